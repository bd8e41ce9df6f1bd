"""An Iceberg write: each mode is one snapshot, committed through the catalog.

``append`` adds data files; ``replace`` overwrites the table and its schema;
``upsert`` deletes the rows whose keys the frame holds and adds the frame (columns
it lacks keep their values), in one overwrite; ``fail`` creates a missing table
only. The commit is the catalog's compare-and-swap of the table's metadata pointer:
a write that fails or is killed before it commits nothing, and readers see the
snapshot before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses.base import Evolve
from knot_prefect.blocks.warehouses.iceberg.catalog import (
    arrow_schema,
    create_transaction,
    iceberg_errors,
    open_table,
)
from knot_prefect.blocks.warehouses.lake.schemas import conform
from knot_prefect.blocks.warehouses.lake.writes import evolve_schema, open_for_write

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table, Transaction

    from knot_prefect.blocks.warehouses.iceberg.catalog import IcebergLocation


def write_table(location: IcebergLocation, data: pa.Table, table: str, mode: str,
                keys: list[str], evolve: Evolve) -> int:
    """Write a prepared, non-empty frame as one snapshot; return the rows written.

    Raises what :meth:`~knot_prefect.blocks.warehouses.base.Warehouse._write_arrow` lists.
    """
    name, current = open_for_write(location, table, mode, open_table)
    with iceberg_errors(location, table):
        if current is None:
            transaction = create_transaction(location, name, data.schema)
            transaction.append(data)
        elif mode == "replace":
            transaction = current.transaction()
            replace_schema(transaction, current, data.schema)
            transaction.overwrite(data)
        else:
            schema = evolve_schema(arrow_schema(current), data.schema, table, evolve)
            transaction = current.transaction()
            add_columns(transaction, current, schema)
            if mode == "append":
                transaction.append(conform(data, schema, table))
            else:
                upsert(transaction, current, data, keys, schema, table)
        commit(transaction)
    return data.num_rows


def commit(transaction: Transaction) -> None:
    """Commit ``transaction``: one compare-and-swap of the table's pointer in the catalog."""
    transaction.commit_transaction()


def add_columns(transaction: Transaction, current: Table, schema: pa.Schema) -> None:
    """Add the columns of ``schema`` the table lacks, within ``transaction``."""
    import pyarrow as pa

    existing = set(current.schema().column_names)
    new = [field for field in schema if field.name not in existing]
    if new:
        with transaction.update_schema() as update:
            update.union_by_name(pa.schema(new))


def replace_schema(transaction: Transaction, current: Table, schema: pa.Schema) -> None:
    """Make ``schema`` the table's, within ``transaction`` (for a ``replace``)."""
    with transaction.update_schema(allow_incompatible_changes=True) as update:
        for column in current.schema().column_names:
            if column not in schema.names:
                update.delete_column(column)
        update.union_by_name(schema)


def upsert(transaction: Transaction, current: Table, data: pa.Table, keys: Sequence[str],
           schema: pa.Schema, table: str) -> None:
    """Replace the rows whose keys ``data`` holds by its rows, keeping columns it lacks.

    One overwrite: its delete is validated against concurrent commits, so two
    writers of the same keys never both land (the later raises a conflict).
    """
    from pyiceberg.table.upsert_util import create_match_filter

    data = conform(data, _fields_of(schema, data.column_names), table)
    match = create_match_filter(data, list(keys))
    kept = [column for column in schema.names if column not in data.column_names]
    if kept:
        existing = current.scan(row_filter=match, selected_fields=(*keys, *kept)).to_arrow()
        existing = conform(existing, _fields_of(schema, existing.column_names), table)
        data = data.join(existing, list(keys), join_type="left outer", use_threads=False)
    transaction.overwrite(conform(data, schema, table), overwrite_filter=match)


def _fields_of(schema: pa.Schema, names: Sequence[str]) -> Any:
    """The fields of ``schema`` named ``names``, in that order."""
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in names])
