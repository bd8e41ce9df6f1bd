"""What the lake blocks share: their fields as the UI shows them, and how DuckDB names columns."""

from __future__ import annotations

from collections.abc import Iterator
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


def test_a_staged_dictionary_column_is_written_encoded_and_read_as_its_values(
        tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    lake = DeltaLake(path=str(tmp_path))
    frame = pa.table({"id": [1, 2, 3], "model": pa.array(["m-1"] * 3).dictionary_encode()})
    part = lake.stage(frame, "scores", lake.new_stage_id())

    (entry,) = part.files
    stored = pq.read_schema(f"{lake.table_uri('scores')}/{entry['path']}")
    assert pa.types.is_dictionary(stored.field("model").type)  # no decoding on the way
    assert lake.commit_staged("scores", [part], keys=["id"]) == 3
    read = lake.read_arrow("SELECT * FROM scores ORDER BY id")
    assert read.schema.field("model").type == pa.string()
    assert read.column("model").to_pylist() == ["m-1"] * 3


@pytest.mark.parametrize("block", [ParquetLake, DeltaLake], ids=lambda block: block.__name__)
def test_a_key_staged_twice_is_found_whichever_slice_of_the_keys_holds_it(
        block: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from knot_prefect.blocks.warehouses.base import SchemaMismatchError
    from knot_prefect.blocks.warehouses.lake import staging

    monkeypatch.setattr(staging, "KEY_CHECK_ROWS", 3)  # 4 slices of the 10 keys
    lake = block(path=str(tmp_path))
    stage_id = lake.new_stage_id()
    parts = [lake.stage(pd.DataFrame({"id": ids, "day": ["a"] * len(ids)}), "t", stage_id, n)
             for n, ids in enumerate([[1, 2, 3, 4, 5], [6, 7, 8, 9, 4]])]
    with pytest.raises(SchemaMismatchError, match=r"\{'id': 4, 'day': 'a'\} \(2 times\)"):
        lake.commit_staged("t", parts, keys=["id", "day"])
    assert not lake.table_exists("t")
    assert lake.commit_staged("t", parts[:1], keys=["id", "day"]) == 5


@pytest.mark.parametrize("block", [ParquetLake, DeltaLake], ids=lambda block: block.__name__)
def test_a_streamed_stage_holds_no_earlier_batch_while_the_next_is_made(
        block: type, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.compute as pc

    rows, batches = 100_000, 5
    batch_bytes = rows * 16  # two 8-byte columns
    held: list[int] = []

    def frames() -> Iterator[pa.Table]:
        for number in range(batches):
            # Arrow memory still allocated when the next batch is asked for: earlier
            # batches kept alive (the first one, say) show here.
            held.append(pa.total_allocated_bytes())
            ids = pc.add(pa.array(np.arange(rows)), number * rows)
            yield pa.table({"id": ids, "score": pc.divide(pc.cast(ids, pa.float64()), 3.0)})

    lake = block(path=str(tmp_path))
    part = lake.stage(frames(), "scores", lake.new_stage_id())
    assert part.rows == rows * batches
    # From the second batch on, what stays allocated is the open file's writer, not
    # batches: the same whichever batch comes next.
    assert max(held[2:]) - held[1] < batch_bytes // 2, held
    assert lake.commit_staged("scores", [part], keys=["id"]) == rows * batches
