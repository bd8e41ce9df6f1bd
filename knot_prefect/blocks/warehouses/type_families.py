"""The broad family of an Arrow type, for comparing a frame's columns with a table's.

Families ignore width and encoding (``int8`` and ``int64`` are both ``integer``;
``large_string`` and a dictionary of strings are both ``string``), so two schemas
can be compared by what their columns hold rather than how they are stored.

Examples:
    >>> import pyarrow as pa
    >>> type_family(pa.int8()), type_family(pa.large_string())
    ('integer', 'string')
    >>> type_family(pa.dictionary(pa.int32(), pa.string())), type_family(pa.list_(pa.int64()))
    ('string', 'other')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def type_family(data_type: pa.DataType) -> str:
    """The broad family of an Arrow type, used to compare a frame with a table.

    Returns:
        One of ``integer``, ``float``, ``decimal``, ``boolean``, ``string``,
        ``binary``, ``timestamp``, ``date``, ``time``, ``null`` or ``other``.
    """
    import pyarrow as pa

    t = pa.types
    checks = [
        (t.is_integer, "integer"),
        (t.is_floating, "float"),
        (t.is_decimal, "decimal"),
        (t.is_boolean, "boolean"),
        (lambda x: t.is_string(x) or t.is_large_string(x) or t.is_string_view(x), "string"),
        (lambda x: t.is_binary(x) or t.is_large_binary(x) or t.is_binary_view(x), "binary"),
        (t.is_timestamp, "timestamp"),
        (t.is_date, "date"),
        (t.is_time, "time"),
        (t.is_null, "null"),
    ]
    for check, family in checks:
        if check(data_type):
            return family
    if t.is_dictionary(data_type):
        return type_family(data_type.value_type)
    return "other"
