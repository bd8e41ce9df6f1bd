"""Arrow schemas of lake tables: a table's schema, and frames conformed to it.

A table records its columns' logical types in its manifest; dictionary-encoded
columns (a lineage column repeating one value) stay encoded in the files and read
back as plain columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses._common import prepare_frame
from knot_prefect.blocks.warehouses.base import SchemaMismatchError

if TYPE_CHECKING:
    import pyarrow as pa


def table_of(schema: pa.Schema, batch: pa.RecordBatch | None = None) -> pa.Table:
    """An Arrow table of ``batch``, or an empty one of ``schema``."""
    import pyarrow as pa

    if batch is None:
        return schema.empty_table()
    return pa.Table.from_batches([batch], schema=schema)


def unify(schemas: list[pa.Schema], table: str) -> pa.Schema:
    """One schema for the parts of a new table (an all-null column takes a real type)."""
    import pyarrow as pa

    try:
        return pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatchError(
            f"The rows staged for {table} have columns of conflicting types ({exc}); "
            "convert them to one type before scoring."
        ) from exc


def target_schema(existing: pa.Schema, data: pa.Table) -> pa.Schema:
    """The table's schema after writing ``data``: new columns go last."""
    import pyarrow as pa

    extra = [
        data.schema.field(name).remove_metadata()
        for name in data.column_names
        if name not in existing.names
    ]
    return pa.schema(list(existing) + extra)


def conform(data: pa.Table, schema: pa.Schema, table: str) -> pa.Table:
    """Cast ``data`` to the table's schema; absent columns become nulls."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name not in data.column_names:
            columns.append(pa.nulls(data.num_rows, field.type))
            continue
        column = data.column(field.name)
        if column.type == field.type or (
            pa.types.is_dictionary(column.type) and column.type.value_type == field.type
        ):
            columns.append(column)  # dictionaries stay encoded: see files.write_files
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"Column {field.name!r} of the frame has type {column.type} but table "
                f"{table!r} stores {field.type}, and the values do not convert ({exc}). "
                "Convert the column first, or rewrite the table with mode='replace'."
            ) from exc
    return pa.Table.from_arrays(
        columns, schema=pa.schema(
            [field.with_type(column.type) for field, column in zip(schema, columns, strict=True)]
        ),
    )


def prepare(data: pa.Table, table: str) -> pa.Table:
    """``prepare_frame``, except that dictionary columns of a plain value type stay encoded.

    A lineage column repeats one value on every row; as a dictionary it costs four
    bytes a row and is written to Parquet without decoding (see :func:`logical`).
    """
    import pyarrow as pa

    logical = prepare_frame(data.schema.empty_table(), table).schema
    if logical.equals(data.schema):
        return data
    columns = []
    for field, column in zip(logical, data.columns, strict=True):
        encoded = pa.types.is_dictionary(column.type) and column.type.value_type == field.type
        columns.append(column if encoded or column.type == field.type
                       else column.cast(field.type))
    return pa.Table.from_arrays(columns, names=logical.names)


def logical(schema: pa.Schema) -> pa.Schema:
    """The schema a table records for data of ``schema``: dictionaries as their values."""
    import pyarrow as pa

    return pa.schema([
        field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field
        for field in schema
    ])


def as_physical(batch: pa.RecordBatch, physical: pa.Schema) -> pa.RecordBatch:
    """``batch`` in the column types of the file being written (encoding or decoding)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.schema.equals(physical):
        return batch
    columns = []
    for field, column in zip(physical, batch.columns, strict=True):
        if column.type == field.type:
            columns.append(column)
        elif pa.types.is_dictionary(field.type):
            columns.append(pc.dictionary_encode(column.cast(field.type.value_type))
                           .cast(field.type))
        else:
            columns.append(column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=physical)


def cast_to_format(data: pa.Table, column_type: Callable[[pa.DataType, str], pa.DataType],
                   table: str, table_kind: str) -> pa.Table:
    """``data`` with each column in the type ``column_type`` names, cast without loss.

    Args:
        data: The frame.
        column_type: The table format's type of a column (its type and name); it
            raises for a column the format cannot hold.
        table: The table's name, for messages.
        table_kind: How messages name the format's table (``a Delta table``).

    Raises:
        SchemaMismatchError: For a value that would change (sub-microsecond times,
            unsigned integers past 2**63).
    """
    import pyarrow as pa

    target = pa.schema([field.with_type(column_type(field.type, field.name))
                        for field in data.schema])
    if target.equals(data.schema):
        return data
    try:
        return data.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(
            f"The frame for {table} has values {table_kind} cannot hold unchanged ({exc}): "
            "round timestamps to microseconds and keep integers within the signed 64-bit "
            "range."
        ) from exc
