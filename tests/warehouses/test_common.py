"""The rules every backend shares: parameters, staging names, frames, keys, redaction."""

from __future__ import annotations

import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses._common import (
    bind_named,
    check_compatible,
    prepare_frame,
    redact,
    staging_name,
)
from knot_prefect.blocks.warehouses.base import SchemaMismatchError, WarehouseError
from knot_prefect.blocks.warehouses.identifiers import TableName


def test_bind_named_translates_each_style_and_skips_literals_comments_and_casts() -> None:
    sql = "select ':a', \"x:a\", b::int -- :a\n/* :a */ from t where a = :a and c = :c or d = :a"
    params = {"a": 1, "c": 2}
    assert bind_named(sql, params, "numeric_dollar") == (
        "select ':a', \"x:a\", b::int -- :a\n/* :a */ from t where a = $1 and c = $2 or d = $1",
        [1, 2],
    )
    assert bind_named(sql, params, "qmark")[1] == [1, 2, 1]
    assert bind_named(sql, params, "named_dollar")[0].endswith("a = $a and c = $c or d = $a")
    colon, values = bind_named(sql, params, "named_colon")
    assert colon.startswith("select '\\:a', \"x\\:a\"") and values == params


def test_bind_named_names_the_missing_parameter() -> None:
    with pytest.raises(WarehouseError, match=r":day but params has no value .*has: id"):
        bind_named("select * from t where d = :day", {"id": 1}, "numeric_dollar")


def test_staging_names_are_unique_valid_and_short() -> None:
    target = TableName.parse(f"analytics.{'very_long_table_name_' * 3}")
    first, second = staging_name(target), staging_name(target)
    assert first != second and first.schema == "analytics"
    assert first.table.startswith("_knot_stage_") and len(first.table) <= 63


def test_prepare_frame_refuses_duplicate_names_and_normalises_types() -> None:
    with pytest.raises(SchemaMismatchError, match="'ID' twice"):
        prepare_frame(pa.table({"id": [1], "ID": [2]}), "t")
    data = pa.table(
        {
            "c": pa.array(["a", "b"]).dictionary_encode(),
            "s": pa.array(["x", "y"], pa.large_string()),
        }
    )
    assert prepare_frame(data, "t").schema == pa.schema({"c": pa.string(), "s": pa.string()})


def test_check_compatible_widens_numbers_and_reports_every_problem() -> None:
    incoming = pa.schema({"a": pa.int32(), "b": pa.float64(), "c": pa.string(), "d": pa.null()})
    existing = {"a": "float", "b": "integer", "c": "timestamp", "d": "integer"}
    with pytest.raises(SchemaMismatchError) as caught:
        check_compatible(incoming, existing, "t", evolve=False)
    message = str(caught.value)
    assert "'b' is float" in message and "'c' is string" in message and "'a'" not in message
    assert check_compatible(
        pa.schema({"A": pa.int64(), "n": pa.int8()}),
        {"a": "integer"},
        "t",
        evolve=True,
        case_insensitive=True,
    ) == ["n"]


def test_redact_removes_plain_and_url_encoded_secrets() -> None:
    text = "failed for postgresql://u:p%40ss%2Fw@h/db (password p@ss/w)"
    assert redact(text, ["p@ss/w", None]) == "failed for postgresql://u:***@h/db (password ***)"
