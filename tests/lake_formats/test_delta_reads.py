"""How DeltaLake reads a table: the files of one version, by DuckDB's own Parquet reader.

A local table whose data files hold its rows as they are is scanned by DuckDB's
Parquet reader over the files of the version read (constant memory, row groups
pruned, as a ParquetLake); a table whose log holds more than the files (partition
values) is read through delta-rs's dataset. Either way the rows and types are the
table's, checked against delta-rs's own read.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def plan(lake: Any, sql: str) -> str:
    with lake._query(sql, None) as relation:
        return str(relation.explain())


def rows(table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def test_a_pinned_range_query_scans_only_that_versions_files_with_duckdbs_reader(
        local_delta: Any) -> None:
    local_delta.write(pd.DataFrame({"id": [1, 2, 3], "x": [0.1, 0.2, 0.3]}), "events")
    pinned, versions = local_delta.pin_reads("events")
    local_delta.write(pd.DataFrame({"id": [4], "x": [0.4]}), "events", mode="append")

    query = "SELECT id FROM events WHERE id >= 2 AND id < 9"
    scan = plan(pinned, query)
    assert "PARQUET" in scan.upper() and "ARROW_SCAN" not in scan.upper(), scan
    assert sorted(pinned.read(query)["id"]) == [2, 3]  # version 0 only
    assert sorted(local_delta.read(query)["id"]) == [2, 3, 4]
    assert versions == {"events": 0}


def test_files_read_as_they_are_give_the_tables_types_and_nulls_for_added_columns(
        local_delta: Any) -> None:
    from deltalake import DeltaTable, Field
    from deltalake.schema import PrimitiveType

    local_delta.write(pd.DataFrame({
        "id": [1, 2],
        "at": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:30"], utc=True),
        "local": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "small": pd.Series([1, 2], dtype="int16"),
    }), "typed")
    local_delta.write(pd.DataFrame({"id": [3], "note": ["new"]}), "typed", mode="append",
                      evolve=True)
    log = DeltaTable(local_delta.table_uri("typed"))
    log.alter.add_columns(Field("added", PrimitiveType("string")))  # a column no data file holds

    assert "ARROW_SCAN" not in plan(local_delta, "SELECT * FROM typed").upper()
    read = local_delta.read_arrow("SELECT * FROM typed")
    expected = DeltaTable(local_delta.table_uri("typed")).to_pyarrow_table()
    assert read.column_names == expected.column_names
    assert rows(read) == rows(expected)
    assert str(read.schema.field("small").type) == "int16"
    assert read.schema.field("local").type.tz is None


def test_a_partitioned_table_keeps_its_partition_values(local_delta: Any) -> None:
    from deltalake import write_deltalake

    frame = pd.DataFrame({"id": [1, 2, 3], "day": ["a", "b", "a"]})
    write_deltalake(local_delta.table_uri("parted"), frame, partition_by=["day"])

    read = local_delta.read("SELECT id, day FROM parted ORDER BY id")
    assert read.to_dict("list") == {"id": [1, 2, 3], "day": ["a", "b", "a"]}
