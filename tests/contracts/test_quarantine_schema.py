"""Which rows fit an existing quarantine table: kinds compared by type family."""

from __future__ import annotations

import pyarrow as pa

from knot_prefect.contracts.quarantine import incompatibilities


def _schema(**types: pa.DataType) -> pa.Schema:
    return pa.schema([pa.field(name, data_type) for name, data_type in types.items()])


def test_encodings_of_one_family_fit_each_other() -> None:
    table = _schema(code=pa.int64(), name=pa.string(), blob=pa.binary())
    rows = _schema(
        code=pa.dictionary(pa.int8(), pa.int32()),  # a pandas category of integers
        name=pa.dictionary(pa.int32(), pa.large_string()),
        blob=pa.binary_view(),
    )
    assert incompatibilities(table, rows) == []


def test_a_category_keeps_the_family_of_its_values() -> None:
    table = _schema(code=pa.int64())
    rows = _schema(code=pa.dictionary(pa.int8(), pa.string()))
    [problem] = incompatibilities(table, rows)
    assert "'code' is int64 in the table" in problem


def test_nested_types_must_match_exactly() -> None:
    table = _schema(tags=pa.list_(pa.string()))
    assert incompatibilities(table, _schema(tags=pa.list_(pa.string()))) == []
    [problem] = incompatibilities(table, _schema(tags=pa.struct([("a", pa.string())])))
    assert "'tags' is list<item: string> in the table" in problem
