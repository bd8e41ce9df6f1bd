"""``knot lake``: tables on open table formats (``knot lake migrate``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from knot_prefect.cli._output import fail

if TYPE_CHECKING:
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

app = typer.Typer(help="Lakes on open table formats (Delta Lake).", no_args_is_help=True)


@app.command("migrate")
def migrate(
    source: str = typer.Argument(
        ...,
        help="A ParquetLake table's folder (holding _manifest.json), or the name of a "
        "ParquetLake block document (then pass --table).",
    ),
    to: Path = typer.Option(..., "--to", help="Folder of the Delta table to write."),
    table: str = typer.Option(
        None, "--table", help="The table to migrate, with a block document as SOURCE."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing Delta table at --to (a new version)."
    ),
) -> None:
    """Turn a ParquetLake table into a Delta table: its live rows, in one commit.

    Example: knot lake migrate ~/.knot/lake/scores --to ~/.knot/delta/scores
    """
    from knot_prefect.errors import KnotError

    try:
        lake, name = _source(source, table)
        from knot_prefect.blocks.warehouses.delta_lake import DeltaLake

        target = to.expanduser().absolute()
        done = DeltaLake(path=str(target.parent)).migrate_parquet_table(
            lake, name, target.name, overwrite=overwrite)
    except (KnotError, ModuleNotFoundError) as exc:
        fail(str(exc))
    typer.echo(f"Migrated {done.rows} rows ({done.files} live file(s)) of {done.source} "
               f"to the Delta table {done.target}, version {done.version}.")


def _source(source: str, table: str | None) -> tuple[ParquetLake, str]:
    """The Parquet lake and table named by ``source`` (a table folder or a document)."""
    from knot_prefect.blocks.warehouses.lake.manifest import MANIFEST_NAME
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.errors import ConfigurationError

    folder = Path(source).expanduser()
    if (folder / MANIFEST_NAME).is_file():
        if table:
            raise ConfigurationError(
                f"{source} is a table's folder: drop --table, or pass the lake's block "
                "document name as SOURCE."
            )
        return ParquetLake(path=str(folder.absolute().parent)), folder.name
    if folder.is_dir():
        raise ConfigurationError(
            f"{source} holds no {MANIFEST_NAME}: pass the folder of one ParquetLake table "
            "(e.g. ~/.knot/lake/scores), or a ParquetLake block document name with --table."
        )
    if not table:
        raise ConfigurationError(
            f"{source!r} is not a folder: with a ParquetLake block document name, pass "
            "the table to migrate with --table."
        )
    from knot_prefect.blocks.resolve import resolve_block

    return resolve_block(source, ParquetLake), table
