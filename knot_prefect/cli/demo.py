"""``knot demo``: the end-to-end ML pipeline on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    home: Path = typer.Option(
        None, "--home", help="knot home folder (default: $KNOT_HOME or ./.knot)."
    ),
    rows: int = typer.Option(
        100_000, "--rows", help="Approximate rows of activity events to generate."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the generated dataset."),
) -> None:
    """Run the whole story on embedded defaults: seed, features, train, promote, score."""
    import os

    if home is not None:
        os.environ["KNOT_HOME"] = str(home)
    from knot_prefect.demo.run import run_demo

    summary = run_demo(rows=rows, seed=seed)
    typer.echo(summary)
