"""DuckDB specifics: where the file lives, in-memory databases, Arrow in and out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from knot_prefect import DuckDBWarehouse


def test_default_path_is_the_knot_home_warehouse(knot_home: Path) -> None:
    warehouse = DuckDBWarehouse()
    assert warehouse.database_path == str(knot_home / "warehouse.duckdb")
    warehouse.write(pd.DataFrame({"id": [1]}), "t")
    assert (knot_home / "warehouse.duckdb").exists()
    assert str(knot_home) in warehouse.check_connection()


def test_memory_database_lives_as_long_as_the_block_object() -> None:
    warehouse = DuckDBWarehouse(path=":memory:")
    warehouse.write(pd.DataFrame({"id": [1, 2]}), "t")
    assert warehouse.read_table("t")["id"].tolist() == [1, 2]
    assert not DuckDBWarehouse(path=":memory:").table_exists("t")


def test_table_names_match_regardless_of_case_as_duckdb_does(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.write(pd.DataFrame({"ID": [1], "Score": [0.5]}), "Scores")
    warehouse.write(pd.DataFrame({"id": [2], "score": [0.7]}), "scores")
    assert warehouse.table_exists("SCORES")
    assert warehouse.read_table("scores")["ID"].tolist() == [1, 2]


def test_arrow_reads_keep_types_and_stream(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    data = pa.table({"id": pa.array(range(10_000), pa.int32()), "x": pa.array([1.5] * 10_000)})
    warehouse.write(data, "t")
    assert warehouse.read_table_arrow("t").schema == data.schema
    sizes = [b.num_rows for b in warehouse.read_batches("select * from t", batch_rows=4096)]
    assert sizes == [4096, 4096, 1808]


def test_another_process_can_open_the_file_between_operations(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path=str(path))
    warehouse.write(pd.DataFrame({"id": [1, 2, 3]}), "t")
    count = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import duckdb; print(duckdb.connect({str(path)!r}).sql('select count(*) from t')"
            ".fetchall()[0][0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert count.stdout.strip() == "3"
