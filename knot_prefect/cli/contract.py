"""``knot contract``: infer a contract from a warehouse table, store one as a block."""

from __future__ import annotations

from pathlib import Path

import typer

from knot_prefect.cli._output import fail as _fail

app = typer.Typer(
    help="Infer data contracts from data; store them as blocks.", no_args_is_help=True
)


@app.command("infer")
def infer(
    warehouse: str = typer.Option(..., "--warehouse", help="Warehouse block document name."),
    table: str = typer.Option(..., "--table", help="Table to sample: 'table' or 'schema.table'."),
    sample: int = typer.Option(10_000, "--sample", min=1, help="Rows to read for inference."),
    name: str | None = typer.Option(None, "--name", help="Schema name (default: the table)."),
    bounds: bool = typer.Option(
        True, "--bounds/--no-bounds", help="Keep the value ranges observed in the sample."
    ),
) -> None:
    """Print a contract YAML inferred from a sample of TABLE; review it, then apply it."""
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.contracts.inference import infer_contract_yaml
    from knot_prefect.errors import KnotError

    try:
        block = resolve_block(warehouse, Warehouse)
        table_name = TableName.parse(table)
        if not block.table_exists(table):
            _fail(f"Table {table!r} does not exist in warehouse {warehouse!r}.")
        frame = block.read(f"SELECT * FROM {table_name.quoted()} LIMIT {int(sample)}")
    except KnotError as exc:
        _fail(str(exc))
    if frame.empty:
        _fail(f"Table {table!r} has no rows to infer a contract from.")
    header = (
        f"Inferred by `knot contract infer` from {table} ({len(frame)} sample rows).\n"
        "Review dtypes, nullability and bounds before `knot contract apply NAME FILE`."
    )
    typer.echo(
        infer_contract_yaml(frame, name=name or table_name.table, bounds=bounds, header=header),
        nl=False,
    )


@app.command("apply")
def apply(
    name: str = typer.Argument(..., help="Name of the DataContract block document."),
    file: Path = typer.Argument(..., help="Contract YAML (Pandera's DataFrameSchema format)."),
    sensitive: list[str] = typer.Option(
        None, "--sensitive", help="A column masked in reports (repeat for several)."
    ),
    version_label: str | None = typer.Option(
        None, "--version-label", help="A label put in front of the schema hash."
    ),
) -> None:
    """Store FILE as the DataContract document NAME (created or updated).

    Sensitive columns and the version label of an existing document are kept unless
    given again.
    """
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.contract_yaml import load_schema_yaml
    from knot_prefect.errors import KnotError

    if not file.is_file():
        _fail(f"Contract file {str(file)!r} does not exist.")
    text = file.read_text(encoding="utf-8")
    try:
        schema = load_schema_yaml(text, f"DataContract {name!r} (from {file})")
    except KnotError as exc:
        _fail(str(exc))
    try:
        existing: DataContract | None = DataContract.load(name)  # type: ignore[assignment]
    except ValueError:
        existing = None
    contract = DataContract(
        schema_yaml=text,
        sensitive_columns=list(sensitive)
        if sensitive
        else (existing.sensitive_columns if existing else []),
        version_label=version_label or (existing.version_label if existing else None),
    )
    contract.save(name, overwrite=True)
    action = "updated" if existing else "created"
    typer.echo(
        f"DataContract {name!r} {action}: {len(schema.columns)} columns, "
        f"version {contract.version}."
    )
