"""A Delta write: each mode is one Delta transaction.

``append`` adds data files; ``replace`` overwrites the table (and its schema);
``upsert`` is a Delta MERGE on the keys that updates the columns the frame has and
inserts the rest; ``fail`` creates a missing table only. A write that fails or is
killed commits nothing: readers see the version before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import check_compatible
from knot_prefect.blocks.warehouses.base import Evolve
from knot_prefect.blocks.warehouses.delta.tables import arrow_schema, delta_errors, open_table
from knot_prefect.blocks.warehouses.lake.schemas import conform, target_schema
from knot_prefect.blocks.warehouses.lake.writes import family_of_columns, open_for_write

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation


def write_table(location: DeltaLocation, data: pa.Table, table: str, mode: str,
                keys: list[str], evolve: Evolve) -> int:
    """Write a prepared, non-empty frame in one transaction; return the rows written.

    Raises what :meth:`~knot_prefect.blocks.warehouses.base.Warehouse._write_arrow` lists.
    """
    from deltalake import write_deltalake

    name, current = open_for_write(location, table, mode, open_table)
    with delta_errors(location, table):
        if current is None or mode == "replace":
            write_deltalake(current if current is not None else location.uri(name), data,
                            mode="overwrite" if current is not None else "error",
                            schema_mode="overwrite" if current is not None else None,
                            storage_options=location.options)
            return data.num_rows
        existing = arrow_schema(current)
        new_columns = check_compatible(data.schema, family_of_columns(existing), table, evolve)
        schema = target_schema(existing, data)
        if mode == "append":
            write_deltalake(current, conform(data, schema, table), mode="append",
                            schema_mode="merge" if new_columns else None)
        else:
            merge(current, conform(data, _columns_of(schema, data), table), keys,
                  evolve=bool(new_columns))
    return data.num_rows


def merge(current: DeltaTable, source: Any, keys: Sequence[str], evolve: bool) -> None:
    """Upsert ``source`` (a table or record-batch reader) into ``current``: one MERGE.

    Matched rows get the source's columns, other columns keep their values; rows
    with new keys are inserted (columns the source lacks are null).
    """
    import pyarrow as pa

    columns = pa.schema(source.schema).names
    matches = " AND ".join(f"t.{quote(key)} = s.{quote(key)}" for key in keys)
    values = {quote(column): f"s.{quote(column)}" for column in columns}
    updates = {column: value for column, value in values.items()
               if column not in {quote(key) for key in keys}}
    builder = current.merge(source, predicate=matches, source_alias="s", target_alias="t",
                            merge_schema=evolve)
    if updates:
        builder = builder.when_matched_update(updates=updates)
    builder.when_not_matched_insert(updates=values).execute()


def quote(column: str) -> str:
    """A column name as delta-rs's SQL expressions name it."""
    return "`" + column.replace("`", "``") + "`"


def _columns_of(schema: pa.Schema, data: pa.Table) -> pa.Schema:
    """The table's fields of the frame's columns, in the frame's order."""
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in data.column_names])
