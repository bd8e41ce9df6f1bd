"""What the lake blocks share: their fields as the UI shows them, and how DuckDB names columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect import DeltaLake, IcebergTable, ParquetLake
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError
from knot_prefect.blocks.warehouses.lake.query import duckdb_types

LAKES = [ParquetLake, DeltaLake, IcebergTable]


@pytest.mark.parametrize("block", LAKES, ids=lambda block: block.__name__)
def test_the_path_field_names_each_formats_default_folder(block: type) -> None:
    description = block.model_json_schema()["properties"]["path"]["description"]
    assert f"'{block._home_folder}' for a" in description


@pytest.mark.parametrize("block", LAKES, ids=lambda block: block.__name__)
def test_threads_is_described_by_its_docstring_and_must_be_positive(block: type) -> None:
    field = block.model_fields["threads"]
    assert field.description and field.description.startswith("DuckDB threads per query")
    with pytest.raises(ValueError, match="threads"):
        block(threads=0)


def test_duckdb_types_are_those_duckdb_gives_the_arrow_schema() -> None:
    import duckdb

    schema = pa.schema([
        ("id", pa.int64()), ("at", pa.timestamp("us", "UTC")), ("local", pa.timestamp("us")),
        ("nested", pa.struct([("a b", pa.string()), ("z", pa.list_(pa.float32()))])),
        ("amount", pa.decimal128(10, 3)), ("tags", pa.map_(pa.string(), pa.int32())),
        ("day", pa.date32()), ("raw", pa.binary()), ("flag", pa.bool_()),
    ])
    connection = duckdb.connect()
    connection.register("t", schema.empty_table())
    described = [row[1] for row in connection.execute("DESCRIBE SELECT * FROM t").fetchall()]
    assert duckdb_types(connection, schema) == described


def test_a_delta_column_name_that_is_no_safe_identifier_is_refused_by_name(
        tmp_path: Path) -> None:
    from deltalake import write_deltalake

    lake = DeltaLake(path=str(tmp_path))
    write_deltalake(lake.table_uri("odd"), pd.DataFrame({'a"b': [1], "ok": [2]}))
    with pytest.raises(InvalidIdentifierError, match="column name 'a\"b'"):
        lake.read("SELECT ok FROM odd")
