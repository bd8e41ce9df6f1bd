"""Frames in the column types an Iceberg table holds.

Iceberg (format version 2) keeps timestamps and times of day in microseconds,
timestamps UTC-adjusted (``timestamptz``) or without a zone, and has no unsigned
integers nor durations. Frames are converted before a write so that what a table
holds is exactly what was sent: a conversion that would lose a value
(nanoseconds, an unsigned integer past the signed range) is refused instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.base import SchemaMismatchError
from knot_prefect.blocks.warehouses.lake.schemas import cast_to_format

if TYPE_CHECKING:
    import pyarrow as pa


def iceberg_type(data_type: pa.DataType, column: str, table: str,
                 keep_null: bool = False) -> pa.DataType:
    """The Arrow type an Iceberg table stores for ``data_type``.

    An all-null column (Arrow's ``null``, which format version 2 lacks) is stored
    as a string column, unless ``keep_null`` (a staged part: its type comes from the
    other parts, see :func:`concrete`).

    Raises:
        SchemaMismatchError: For a type Iceberg cannot hold (a duration).
    """
    import pyarrow as pa

    if pa.types.is_timestamp(data_type):
        return pa.timestamp("us", "UTC" if data_type.tz else None)
    if pa.types.is_time(data_type):
        return pa.time64("us")
    if pa.types.is_unsigned_integer(data_type):
        return {8: pa.int32(), 16: pa.int32()}.get(data_type.bit_width, pa.int64())
    if pa.types.is_int8(data_type) or pa.types.is_int16(data_type):
        return pa.int32()
    if pa.types.is_duration(data_type):
        raise SchemaMismatchError(
            f"Column {column!r} of the frame for {table} is {data_type}, which an Iceberg "
            "table cannot hold: convert it to a number of seconds first."
        )
    if pa.types.is_dictionary(data_type):
        return iceberg_type(data_type.value_type, column, table, keep_null)
    if pa.types.is_null(data_type) and not keep_null:
        return pa.string()
    return data_type


def concrete(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every all-null column typed as a string column."""
    import pyarrow as pa

    return pa.schema([field.with_type(pa.string()) if pa.types.is_null(field.type) else field
                      for field in schema])


def to_iceberg_types(data: pa.Table, table: str, keep_null: bool = False) -> pa.Table:
    """``data`` with every column in a type Iceberg holds, cast without loss.

    Raises:
        SchemaMismatchError: For a column Iceberg cannot hold, or a value that would
            change (sub-microsecond times, unsigned integers past 2**63).
    """
    return cast_to_format(
        data, lambda data_type, column: iceberg_type(data_type, column, table, keep_null),
        table, "an Iceberg table")
