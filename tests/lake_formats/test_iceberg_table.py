"""IcebergTable beyond the shared contract: staged commits as one snapshot, conflicts,
pinned snapshots, other engines reading knot's tables (and knot reading theirs), and
catalogs whose secrets stay out of every message.

The shared contract (tests/warehouses/test_contract.py) runs the modes, schema checks,
eight concurrent upserters and a writer killed mid-commit on ``iceberg-local`` (SQLite
catalog) and ``iceberg-pg`` (PostgreSQL catalog).
"""

from __future__ import annotations

import datetime as dt
import pickle
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect import IcebergTable
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    SchemaMismatchError,
    WarehouseError,
)
from knot_prefect.lineage.versions import pin_source_versions


def scores(ids: list[int], score: float) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score] * len(ids)})


def table(lake: IcebergTable, name: str = "scores") -> list[tuple[Any, ...]]:
    return sorted(tuple(row.values()) for row in lake.read_table_arrow(name).to_pylist())


def catalog_table(lake: IcebergTable, name: str = "scores") -> Any:
    """The table as pyiceberg itself loads it from the lake's catalog."""
    location = lake._location()
    return location.catalog().load_table(location.identifier(_name(name)))


def _name(name: str) -> Any:
    from knot_prefect.blocks.warehouses.identifiers import TableName

    return TableName.parse(name)


@pytest.fixture
def lake(tmp_path: Path) -> IcebergTable:
    return IcebergTable(path=str(tmp_path / "iceberg"))


def test_staged_parts_are_invisible_until_one_snapshot_adds_them_as_they_are(
    lake: IcebergTable,
) -> None:
    stage_id = lake.new_stage_id()
    first = lake.stage((scores(ids, 1.0) for ids in ([1, 2], [3])), "scores", stage_id, 0,
                       unique_keys=["id"])
    second = lake.stage(scores([4], 2.0), "scores", stage_id, 1)
    assert not lake.table_exists("scores")

    assert lake.commit_staged("scores", [first, second], keys=["id"]) == 4
    iceberg = catalog_table(lake)
    assert len(iceberg.snapshots()) == 1
    committed = {Path(task.file.file_path).name for task in iceberg.scan().plan_files()}
    staged = {Path(entry["path"]).name for part in (first, second) for entry in part.files}
    assert committed == staged  # added, not rewritten
    assert table(lake) == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0)]

    stage_id = lake.new_stage_id()
    parts = [lake.stage(scores([2, 5], 3.0), "scores", stage_id, 0),
             lake.stage(scores([6], 3.0), "scores", stage_id, 1)]
    assert table(lake) == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0)]
    commits = len(catalog_table(lake).metadata.metadata_log)
    assert lake.commit_staged("scores", parts, keys=["id"]) == 3
    # one commit: the catalog's pointer moved once (its delete and append together)
    assert len(catalog_table(lake).metadata.metadata_log) == commits + 1
    assert table(lake) == [(1, 1.0), (2, 3.0), (3, 1.0), (4, 2.0), (5, 3.0), (6, 3.0)]


def test_repeated_staged_keys_are_refused_and_discard_leaves_no_files(
    lake: IcebergTable,
) -> None:
    lake.write(scores([1], 0.0), "scores")
    version = lake.table_version("scores")
    stage_id = lake.new_stage_id()
    parts = [lake.stage(scores([2], 1.0), "scores", stage_id, 0),
             lake.stage(scores([2], 1.0), "scores", stage_id, 1)]
    with pytest.raises(SchemaMismatchError, match="repeat"):
        lake.commit_staged("scores", parts, keys=["id"])
    assert table(lake) == [(1, 0.0)] and lake.table_version("scores") == version
    lake.discard_staged(parts)
    assert not any(Path(lake.table_uri("scores"), entry["path"]).exists()
                   for part in parts for entry in part.files)


def test_an_upsert_whose_rows_another_writer_changed_first_is_refused_whole(
    lake: IcebergTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knot_prefect.blocks.warehouses.iceberg import writes

    lake.write(scores([1, 2, 3], 0.0), "scores", mode="upsert", keys=["id"])
    other = lake.model_copy()
    real_commit = writes.commit
    raced: list[bool] = []

    def other_writer_first(transaction: Any) -> None:
        if not raced:  # only the late write's commit: the other one runs as is
            raced.append(True)
            other.write(scores([2], 5.0), "scores", mode="upsert", keys=["id"])
        real_commit(transaction)

    monkeypatch.setattr(writes, "commit", other_writer_first)
    with pytest.raises(ConcurrentWriteError, match="retrying the write is safe"):
        lake.write(scores([2, 3], 9.0), "scores", mode="upsert", keys=["id"])
    assert table(lake) == [(1, 0.0), (2, 5.0), (3, 0.0)]


def test_a_pinned_snapshot_reads_back_the_exact_input_after_the_table_changed(
    lake: IcebergTable,
) -> None:
    lake.write(scores([1, 2], 0.5), "scores")
    pinned, versions = pin_source_versions(lake, "SELECT * FROM scores WHERE score > :s",
                                           {"s": 0.1})
    assert versions == {"scores": lake.table_version("scores")}
    before = lake.read_arrow("SELECT * FROM scores ORDER BY id")

    lake.write(scores([2, 3], 0.9), "scores", mode="upsert", keys=["id"])
    lake.write(pd.DataFrame({"id": [7], "label": ["x"]}), "scores", mode="replace")

    shipped = pickle.loads(pickle.dumps(pinned))  # as a Dask worker receives it
    assert shipped.read_arrow("SELECT * FROM scores ORDER BY id").equals(before)
    again, read = lake.read_versioned("SELECT * FROM scores ORDER BY id", versions=versions)
    assert again.equals(before) and read == versions
    assert lake.read_table_arrow("scores", version=versions["scores"]).num_rows == 2
    assert table(lake) == [(7, "x")]
    with pytest.raises(WarehouseError, match=r"Snapshot 12345 .* does not exist"):
        lake.read_table_arrow("scores", version=12345)


def test_other_engines_read_what_knot_wrote(lake: IcebergTable) -> None:
    import duckdb
    import polars as pl

    lake.write(scores([1, 2, 3], 0.1), "ml.scores")
    lake.write(scores([2], 0.7), "ml.scores", mode="upsert", keys=["id"])
    lake.write(pd.DataFrame({"id": [4], "score": [0.4], "tier": ["a"]}), "ml.scores",
               mode="append", evolve=True)
    expected = [(1, 0.1, None), (2, 0.7, None), (3, 0.1, None), (4, 0.4, "a")]
    iceberg = catalog_table(lake, "ml.scores")

    polars_rows = pl.scan_iceberg(iceberg.metadata_location).collect()
    assert sorted(polars_rows.rows()) == expected
    arrow_rows = iceberg.scan().to_arrow()
    assert sorted(tuple(r.values()) for r in arrow_rows.to_pylist()) == expected
    connection = duckdb.connect()
    installed = connection.execute(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'iceberg'"
    ).fetchone()
    if installed and installed[0]:  # never downloaded here: only where it is installed
        connection.execute("LOAD iceberg")
        duck = connection.execute(
            "SELECT * FROM iceberg_scan(?)", [iceberg.metadata_location]).fetchall()
        assert sorted(duck) == expected


def test_knot_reads_and_upserts_a_table_pyiceberg_wrote(lake: IcebergTable) -> None:
    catalog = lake._location().catalog()
    catalog.create_namespace_if_not_exists("default")
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "score": [0.1, 0.2, 0.3]})
    written = catalog.create_table(("default", "outside"), schema=data.schema)
    written.append(data)
    written.delete("id = 2")

    assert lake.list_tables() == ["outside"]
    assert lake.read("SELECT id FROM outside ORDER BY id")["id"].tolist() == [1, 3]
    lake.write(scores([3, 4], 0.9), "outside", mode="upsert", keys=["id"])
    assert table(lake, "outside") == [(1, 0.1), (3, 0.9), (4, 0.9)]


def test_times_of_day_are_kept_and_lossy_values_refused(lake: IcebergTable) -> None:
    frame = pa.table({"id": [1], "at": pa.array([dt.time(8, 30, 1, 5)], pa.time64("ns")),
                      "small": pa.array([3], pa.uint8())})
    lake.write(frame, "times")
    assert lake.read_table_arrow("times").to_pylist() == [
        {"id": 1, "at": dt.time(8, 30, 1, 5), "small": 3}]
    nanos = pa.table({"id": [2], "ts": pa.array([1], pa.timestamp("ns"))})
    with pytest.raises(SchemaMismatchError, match="cannot hold unchanged"):
        lake.write(nanos, "stamps")
    assert not lake.table_exists("stamps")


def test_a_catalog_password_never_appears_in_reprs_nor_errors(
    tmp_path: Path, postgres_database: dict[str, str]
) -> None:
    from sqlalchemy.engine import make_url

    secret = "iceberg-Catalog-pw-77"
    # a database that does not exist: the server refuses whatever its auth method
    wrong = make_url(postgres_database["url"]).set(password=secret,
                                                   database="no_such_catalog_db")
    lake = IcebergTable(path=str(tmp_path / "pg"),
                        catalog_uri=wrong.render_as_string(hide_password=False))
    assert secret not in repr(lake) and secret not in str(lake.model_dump())
    with pytest.raises(WarehouseError, match="catalog") as raised:
        lake.write(scores([1], 0.1), "scores")
    assert secret not in "".join(traceback.format_exception(raised.value))


def test_a_rest_catalog_out_of_reach_is_named_without_its_credential(tmp_path: Path) -> None:
    credential = "client:rest-Secret-42"
    lake = IcebergTable(path=str(tmp_path / "rest"), catalog_uri="http://127.0.0.1:9",
                        catalog_credential=credential)
    assert "rest-Secret-42" not in repr(lake)
    with pytest.raises(WarehouseError, match="catalog") as raised:
        lake.list_tables()
    assert "rest-Secret-42" not in str(raised.value)


def test_a_catalog_error_names_neither_the_catalog_host_nor_its_database(
    tmp_path: Path, postgres_database: dict[str, str]
) -> None:
    from sqlalchemy.engine import make_url

    wrong = make_url(postgres_database["url"]).set(database="catalog_Db_where_77")
    lake = IcebergTable(path=str(tmp_path / "pg"),
                        catalog_uri=wrong.render_as_string(hide_password=False))
    with pytest.raises(WarehouseError, match="catalog_uri") as raised:
        lake.write(scores([1], 0.1), "scores")
    message = "".join(traceback.format_exception(raised.value))
    assert "catalog_Db_where_77" not in message
    assert str(wrong.host) not in message

    rest = IcebergTable(path=str(tmp_path / "rest"),
                        catalog_uri="http://127.0.0.1:9/private-rest-path")
    with pytest.raises(WarehouseError, match="catalog") as raised:
        rest.list_tables()
    message = "".join(traceback.format_exception(raised.value))
    assert "private-rest-path" not in message and "127.0.0.1" not in message


def test_storage_the_lake_cannot_use_is_refused_with_what_to_do() -> None:
    from prefect_aws import S3Bucket

    with pytest.raises(ValueError, match="needs a shared catalog"):
        IcebergTable(s3_bucket=S3Bucket(bucket_name="b"))
    assert "gcs_bucket" not in IcebergTable.model_json_schema()["properties"]
    # a block keeps unknown keys: a GCS bucket must not be dropped for a local folder
    with pytest.raises(ValueError, match="cannot keep its tables in gcs_bucket"):
        IcebergTable(gcs_bucket={"bucket": "b"})


def test_a_lake_on_s3_writes_stages_and_commits_its_files_in_the_bucket(
    tmp_path: Path, moto_s3: str, contract_s3_bucket: str
) -> None:
    import boto3

    from tests.lake_formats._lakes import s3_bucket_block

    folder = f"iceberg-{tmp_path.name}"
    lake = IcebergTable(s3_bucket=s3_bucket_block(moto_s3, contract_s3_bucket), path=folder,
                        catalog_uri=f"sqlite:///{tmp_path}/catalog.sqlite")
    lake.write(scores([1, 2], 0.1), "scores")
    stage = lake.new_stage_id()
    part = lake.stage(scores([2, 3], 0.9), "scores", stage)
    assert table(lake) == [(1, 0.1), (2, 0.1)]
    assert lake.commit_staged("scores", [part], keys=["id"]) == 2
    assert table(lake) == [(1, 0.1), (2, 0.9), (3, 0.9)]
    assert lake.table_uri("scores").startswith(f"s3://{contract_s3_bucket}/{folder}/")
    listed = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").list_objects_v2(
        Bucket=contract_s3_bucket, Prefix=f"{folder}/scores/")
    keys = [entry["Key"] for entry in listed.get("Contents", [])]
    assert any(key.endswith(".parquet") for key in keys)
    assert any("/metadata/" in key for key in keys)
    assert not (tmp_path / folder).exists()  # nothing of the table landed on local disk
