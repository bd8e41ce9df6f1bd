"""Frames in the column types a Delta table holds.

Delta keeps timestamps in microseconds, either UTC-adjusted (``timestamp``) or
without a zone (``timestamp_ntz``), and has no unsigned integers nor times of day.
Frames are converted before a write so that what a table holds is exactly what
was sent: a conversion that would lose a value (nanoseconds, an unsigned integer
past the signed range) is refused instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.base import SchemaMismatchError
from knot_prefect.blocks.warehouses.lake.schemas import cast_to_format

if TYPE_CHECKING:
    import pyarrow as pa


def delta_type(data_type: pa.DataType, column: str, table: str) -> pa.DataType:
    """The Arrow type a Delta table stores for ``data_type``.

    Raises:
        SchemaMismatchError: For a type Delta cannot hold (a time of day, a duration).
    """
    import pyarrow as pa

    if pa.types.is_timestamp(data_type):
        return pa.timestamp("us", "UTC" if data_type.tz else None)
    if pa.types.is_unsigned_integer(data_type):
        return {8: pa.int16(), 16: pa.int32()}.get(data_type.bit_width, pa.int64())
    if pa.types.is_time(data_type) or pa.types.is_duration(data_type):
        raise SchemaMismatchError(
            f"Column {column!r} of the frame for {table} is {data_type}, which a Delta "
            "table cannot hold: convert it to a string or a number of seconds first."
        )
    if pa.types.is_dictionary(data_type):
        return delta_type(data_type.value_type, column, table)
    return data_type


def to_delta_types(data: pa.Table, table: str, keep_dictionaries: bool = True) -> pa.Table:
    """``data`` with every column in a type Delta holds, cast without loss.

    Args:
        data: The frame.
        table: The table it is for (named in errors).
        keep_dictionaries: Leave dictionary columns encoded, their values in a type
            Delta holds; False decodes them, for a stream of batches that must all
            match one declared schema of plain types.

    Raises:
        SchemaMismatchError: For a column Delta cannot hold, or a value that would
            change (sub-microsecond timestamps, unsigned integers past 2**63).
    """
    stored = _stored_type if keep_dictionaries else delta_type
    return cast_to_format(data, lambda data_type, column: stored(data_type, column, table),
                          table, "a Delta table")


def _stored_type(data_type: pa.DataType, column: str, table: str) -> pa.DataType:
    """:func:`delta_type`, except that a dictionary column stays encoded.

    A lineage column repeats one value on every row; delta-rs and Parquet take its
    dictionary as it is, and the table's schema records the value type.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(data_type):
        return pa.dictionary(data_type.index_type,
                             delta_type(data_type.value_type, column, table))
    return delta_type(data_type, column, table)
