"""ParquetLake on a local folder, on moto's S3 server and on the GCS emulator."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from knot_prefect.blocks.warehouses.base import (
    SchemaMismatchError,
    TableExistsError,
    TableNotFoundError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError
from knot_prefect.blocks.warehouses.parquet import (
    MANIFEST_NAME,
    ParquetLake,
)

INJECTIONS = [
    'x"; DROP TABLE scores; --',
    "scores; DELETE FROM scores",
    "a'b",
    "../../etc",
    "a/b",
    "",
    " padded",
]


def scores(ids: list[int], score: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score + i / 100 for i in ids]})


def typed_frame() -> pa.Table:
    utc = dt.UTC
    return pa.table(
        {
            "i64": pa.array([1, None, -(2**62)], pa.int64()),
            "i32": pa.array([1, 2, None], pa.int32()),
            "f64": pa.array([1.5, None, float("inf")], pa.float64()),
            "flag": pa.array([True, False, None]),
            "text": pa.array(["a", None, "ünïcødé ✓"]),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, 12, tzinfo=utc), None,
                 dt.datetime(1999, 12, 31, tzinfo=utc)],
                pa.timestamp("us", tz="UTC"),
            ),
            "naive": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2000, 2, 29)],
                              pa.timestamp("us")),
            "day": pa.array([dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)]),
            "amount": pa.array(
                [decimal.Decimal("12.34"), None, decimal.Decimal("-99999999.99")],
                pa.decimal128(10, 2),
            ),
        }
    )


# -- every storage ---------------------------------------------------------------------
def test_types_round_trip(lake: ParquetLake) -> None:
    frame = typed_frame()
    result = lake.write(frame, "typed", mode="replace")
    assert (result.rows, result.mode, result.table) == (3, "replace", "typed")
    assert lake.read_table_arrow("typed").equals(frame)
    via_sql = lake.read_arrow("SELECT * FROM typed")
    assert via_sql.to_pylist() == frame.to_pylist()


def test_append_replace_and_bound_parameters(lake: ParquetLake) -> None:
    lake.write(scores([1, 2, 3]), "scores")
    lake.write(pl.from_pandas(scores([4, 5])), "scores", mode="append")
    assert sorted(lake.read_table("scores")["id"]) == [1, 2, 3, 4, 5]

    hostile = "1 OR 1=1; DROP TABLE scores"
    found = lake.read("SELECT id FROM scores WHERE CAST(id AS VARCHAR) = :id", {"id": hostile})
    assert found.empty
    found = lake.read("SELECT id FROM scores WHERE id >= :low ORDER BY id", {"low": 4})
    assert found["id"].tolist() == [4, 5]

    lake.write(pd.DataFrame({"other": ["x"]}), "scores", mode="replace")
    assert lake.read_table("scores").to_dict("list") == {"other": ["x"]}
    assert lake.list_tables() == ["scores"]


def test_upsert_updates_matches_inserts_the_rest_and_is_retry_safe(lake: ParquetLake) -> None:
    lake.write(scores([1, 2, 3, 4, 5], score=0.0), "scores", mode="upsert", keys=["id"])
    update = scores([4, 5, 6, 7], score=1.0)
    for _ in range(2):  # a retried task upserts the same frame again
        lake.write(update, "scores", mode="upsert", keys=["id"])
    table = lake.read("SELECT id, score FROM scores ORDER BY id")
    assert table["id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    expected = [0.01, 0.02, 0.03, 1.04, 1.05, 1.06, 1.07]
    assert table["score"].round(4).tolist() == expected


@pytest.mark.heavy
def test_atomic_when_killed_between_data_files_and_manifest(lake: ParquetLake) -> None:
    lake.write(scores([1, 2, 3]), "scores", mode="replace")
    before = lake.read_table("scores")
    # The child builds the same lake, writes its data files and is SIGKILLed by this
    # test at the moment it is about to switch the manifest.
    script = textwrap.dedent(
        """
        import json, sys, time
        import pandas as pd
        from knot_prefect.blocks.warehouses.parquet import ParquetLake

        lake = ParquetLake.model_validate(json.loads(sys.stdin.read()))
        lake.rows_per_file = 1000

        from knot_prefect.blocks.warehouses.lake import writes

        def stop_before_switch(storage, table, manifest, expected, check=True):
            print("DATA-WRITTEN", len(manifest["files"]), flush=True)
            time.sleep(120)

        writes.switch_manifest = stop_before_switch
        lake.write(pd.DataFrame({"id": range(5000), "score": 1.0}), "scores", mode="replace")
        """
    )
    config = lake.model_dump(mode="json", context={"include_secrets": True})
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env={**os.environ},
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(config))
    child.stdin.close()
    line = child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert line.split()[:2] == ["DATA-WRITTEN", "5"], line

    pd.testing.assert_frame_equal(lake.read_table("scores"), before)
    # The orphaned files exist, are not read, and vacuum removes them.
    storage = lake._storage()
    data_files = storage.fs.glob(f"{storage.root}/scores/data/*.parquet")
    assert len(data_files) == 6
    assert lake.vacuum("scores", retain_seconds=0) == 5
    pd.testing.assert_frame_equal(lake.read_table("scores"), before)


# -- local folder (behaviour that does not depend on the storage) -----------------------
@pytest.fixture
def local(tmp_path: Path) -> ParquetLake:
    return ParquetLake(path=str(tmp_path / "lake"), rows_per_file=2)


def test_failure_half_way_through_the_data_files_leaves_table_and_folder_unchanged(
    local: ParquetLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.write(scores([1, 2, 3]), "scores", mode="replace")
    files_before = sorted(Path(local.path, "scores", "data").iterdir())
    calls = {"n": 0}
    real_write_batch = pq.ParquetWriter.write_batch

    def fail_on_third(self: pq.ParquetWriter, batch: pa.RecordBatch, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real_write_batch(self, batch, *args)

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", fail_on_third)
    for mode in ("replace", "append", "upsert"):
        calls["n"] = 0
        with pytest.raises(OSError, match="disk full"):
            local.write(scores(list(range(10, 20))), "scores", mode=mode, keys=["id"])
        assert sorted(local.read_table("scores")["id"]) == [1, 2, 3]
        assert sorted(Path(local.path, "scores", "data").iterdir()) == files_before


def test_large_writes_split_into_files_and_batches_stream(local: ParquetLake) -> None:
    local.rows_per_file = 1000
    local.write(pd.DataFrame({"id": range(4500), "part": [i % 3 for i in range(4500)]}), "big")
    manifest = json.loads(Path(local.path, "big", MANIFEST_NAME).read_text())
    assert [entry["rows"] for entry in manifest["files"]] == [1000] * 4 + [500]
    batches = list(local.read_batches("SELECT * FROM big WHERE part = :p", {"p": 1}, 400))
    assert all(0 < batch.num_rows <= 400 for batch in batches)
    assert sum(batch.num_rows for batch in batches) == 1500


def test_schema_qualified_tables_and_joins(local: ParquetLake) -> None:
    local.write(scores([1, 2]), "analytics.scores")
    local.write(pd.DataFrame({"id": [2], "label": ["b"]}), "labels")
    joined = local.read(
        "SELECT s.id, l.label FROM analytics.scores s JOIN labels l USING (id)"
    )
    assert joined.to_dict("list") == {"id": [2], "label": ["b"]}
    assert local.list_tables() == ["analytics.scores", "labels"]
    assert local.table_exists("analytics.scores") and not local.table_exists("scores")


def test_new_columns_need_evolve_and_types_must_convert(local: ParquetLake) -> None:
    local.write(scores([1]), "scores")
    with pytest.raises(SchemaMismatchError, match=r"'extra'.*evolve=True"):
        local.write(scores([2]).assign(extra="x"), "scores", mode="append")
    with pytest.raises(SchemaMismatchError, match="'id'"):
        local.write(pd.DataFrame({"id": ["not a number"], "score": [1.0]}), "scores",
                    mode="append")
    assert local.read_table("scores")["id"].tolist() == [1]

    local.write(scores([2]).assign(extra="x"), "scores", mode="append", evolve=True)
    table = local.read("SELECT id, extra FROM scores ORDER BY id")
    assert table["extra"].tolist() == [None, "x"]
    # An int32 frame appended to an int64 column is widened, not refused.
    local.write(pa.table({"id": pa.array([3], pa.int32()), "score": [0.1]}), "scores",
                mode="append")
    assert local.read_table_arrow("scores").schema.field("id").type == pa.int64()


def test_modes_fail_and_upsert_rules(local: ParquetLake) -> None:
    local.write(scores([1]), "scores", mode="fail")
    with pytest.raises(TableExistsError, match="mode='fail'"):
        local.write(scores([2]), "scores", mode="fail")
    with pytest.raises(SchemaMismatchError, match="repeat"):
        local.write(scores([2, 2]), "scores", mode="upsert", keys=["id"])
    with pytest.raises(SchemaMismatchError, match="'missing'"):
        local.write(scores([2]), "scores", mode="upsert", keys=["missing"])
    with pytest.raises(ValueError, match="Unknown write mode"):
        local.write(scores([2]), "scores", mode="merge")  # type: ignore[arg-type]
    assert local.read_table("scores")["id"].tolist() == [1]


def test_empty_frame_is_a_no_op(local: ParquetLake) -> None:
    result = local.write(pd.DataFrame({"id": pd.Series([], dtype="int64")}), "empty")
    assert result.rows == 0
    assert not local.table_exists("empty")


def test_missing_tables_are_clear_errors(local: ParquetLake) -> None:
    # The message names the table, the lake and the tables it has (none yet).
    with pytest.raises(TableNotFoundError, match=r"nope does not exist in the Parquet lake .*none"):
        local.read_table("nope")
    with pytest.raises(TableNotFoundError, match="nope"):
        local.read("SELECT * FROM nope")
    local.write(scores([1]), "scores")
    with pytest.raises(SchemaMismatchError, match="'nope'"):
        local.read_table("scores", columns=["id", "nope"])
    with pytest.raises(WarehouseError, match="no value"):
        local.read("SELECT * FROM scores WHERE id = :id")


@pytest.mark.parametrize("bad", INJECTIONS)
def test_identifiers_are_validated_everywhere(local: ParquetLake, bad: str) -> None:
    local.write(scores([1]), "scores")
    with pytest.raises(InvalidIdentifierError):
        local.write(scores([1]), bad)
    with pytest.raises(InvalidIdentifierError):
        local.write(scores([1]), f"{bad}.scores")
    with pytest.raises(InvalidIdentifierError):
        local.write(pd.DataFrame({bad: [1]}), "other")
    with pytest.raises(InvalidIdentifierError):
        local.write(scores([1]), "scores", mode="upsert", keys=[bad])
    with pytest.raises(InvalidIdentifierError):
        local.read_table(bad)
    with pytest.raises(InvalidIdentifierError):
        local.table_exists(bad)
    assert local.list_tables() == ["scores"]
    assert sorted(p.name for p in Path(local.path).iterdir()) == ["scores"]


def test_execute_drops_tables_and_refuses_other_statements(local: ParquetLake) -> None:
    local.write(scores([1]), "scores")
    with pytest.raises(WarehouseError, match="write"):
        local.execute("DELETE FROM scores")
    with pytest.raises(WarehouseError):
        local.execute("DROP TABLE scores; DROP TABLE other")
    local.execute("DROP TABLE scores")
    assert not local.table_exists("scores")
    assert not list(Path(local.path, "scores", "data").glob("*.parquet"))
    local.execute("DROP TABLE IF EXISTS scores")
    with pytest.raises(TableNotFoundError):
        local.execute("DROP TABLE scores")


def test_replace_then_vacuum_keeps_the_live_files(local: ParquetLake) -> None:
    local.write(scores([1, 2, 3]), "scores")
    local.write(scores([4]), "scores", mode="replace")
    assert local.vacuum("scores", retain_seconds=3600) == 0
    assert local.vacuum("scores", retain_seconds=0) == 2
    assert local.read_table("scores")["id"].tolist() == [4]


def test_block_validation_and_connection_check(local: ParquetLake, s3_bucket_name: str,
                                               moto_s3: str) -> None:
    from tests.cloud_warehouses.conftest import S3_SECRET, make_gcs_lake, make_s3_lake

    s3 = make_s3_lake(moto_s3, s3_bucket_name, "folder")
    gcs = make_gcs_lake("bucket", "folder")
    with pytest.raises(ValueError, match="not both"):
        ParquetLake(s3_bucket=s3.s3_bucket, gcs_bucket=gcs.gcs_bucket)
    assert s3.location == f"s3://{s3_bucket_name}/folder"
    assert gcs.location == "gs://bucket/folder"
    assert S3_SECRET not in repr(s3) and S3_SECRET not in str(s3.model_dump())
    local.write(scores([1]), "scores")
    assert local.check_connection() == f"Parquet lake at {local.location}: 1 table(s)"


def test_saved_block_with_nested_s3_bucket_loads_and_reads(
    moto_s3: str, s3_bucket_name: str
) -> None:
    from tests.cloud_warehouses.conftest import make_s3_lake

    lake = make_s3_lake(moto_s3, s3_bucket_name, "saved-lake")
    lake.write(scores([1, 2]), "scores", mode="replace")
    lake.save("knot-test-s3-lake", overwrite=True)
    loaded = ParquetLake.load("knot-test-s3-lake")
    assert loaded.s3_bucket is not None
    assert loaded.read("SELECT count(*) AS n FROM scores")["n"].tolist() == [2]
