"""Entry point of the ``knot`` command.

Only typer is imported here, so ``knot --help`` stays faster than ``prefect --help``;
every command imports what it needs when it runs.
"""

from __future__ import annotations

import typer

from knot_prefect._embedded import apply_embedded_prefect_defaults
from knot_prefect._version import __version__
from knot_prefect.cli import blocks as blocks_commands
from knot_prefect.cli import contract as contract_commands
from knot_prefect.cli import lake as lake_commands
from knot_prefect.cli import pool as pool_commands
from knot_prefect.cli import recipe as recipe_commands
from knot_prefect.cli.demo import demo
from knot_prefect.cli.deploy import deploy
from knot_prefect.cli.doctor import doctor
from knot_prefect.cli.init import init
from knot_prefect.cli.lineage import lineage
from knot_prefect.cli.serve import serve

app = typer.Typer(
    name="knot",
    help="knot-prefect: Prefect blocks, tasks and flow templates for ML teams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(blocks_commands.app, name="blocks")
app.add_typer(contract_commands.app, name="contract")
app.add_typer(lake_commands.app, name="lake")
app.add_typer(pool_commands.app, name="pool")
app.add_typer(recipe_commands.app, name="recipe")
app.command()(doctor)
app.command()(demo)
app.command()(lineage)
app.command()(deploy)
app.command()(serve)
app.command()(init)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"knot-prefect {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """knot-prefect: Prefect blocks, tasks and flow templates for ML teams."""
    # Without PREFECT_API_URL, commands start Prefect's temporary server: the same
    # wait and telemetry settings as a script importing knot_prefect.
    apply_embedded_prefect_defaults()


if __name__ == "__main__":  # pragma: no cover
    app()
