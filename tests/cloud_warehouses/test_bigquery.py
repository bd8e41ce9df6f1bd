"""BigQueryWarehouse at the official client's boundary.

No BigQuery emulator exists, so these tests run the real ``google.cloud.bigquery``
client (and real service-account OAuth) against a local recording endpoint and
assert the requests knot makes: load jobs from Parquet, write dispositions, the
copy/INSERT/MERGE that applies a write, quoted identifiers and bound parameters.
They do not prove that BigQuery itself accepts the SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses.base import TableExistsError, WarehouseError
from knot_prefect.blocks.warehouses.bigquery import BigQueryWarehouse
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError
from tests.cloud_warehouses.bigquery_endpoint import BigQueryEndpoint, start_endpoint
from tests.cloud_warehouses.conftest import service_account_info


@pytest.fixture(scope="module")
def endpoint() -> Iterator[BigQueryEndpoint]:
    state, server = start_endpoint()
    yield state
    server.shutdown()


@pytest.fixture
def warehouse(endpoint: BigQueryEndpoint) -> BigQueryWarehouse:
    from prefect_gcp import GcpCredentials

    endpoint.reset()
    credentials = GcpCredentials(
        service_account_info=service_account_info("knot-proj", f"{endpoint.url}/token"),
        project="knot-proj",
    )
    return BigQueryWarehouse(gcp_credentials=credentials, dataset="ml",
                             api_endpoint=endpoint.url)


def scores(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [i / 10 for i in ids]})


def test_read_binds_parameters_and_returns_arrow(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    endpoint.query_result = (
        [{"name": "id", "type": "INTEGER", "mode": "NULLABLE"},
         {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"}],
        [["1", "1704067200000000"], [None, None]],
    )
    hostile = "x' OR '1'='1"
    table = warehouse.read_arrow(
        "SELECT id, at FROM `ml`.`scores` WHERE name = :name AND day >= :day AND id::text <> ':no'",
        {"name": hostile, "day": dt.date(2024, 1, 1)},
    )
    assert table.column("id").to_pylist() == [1, None]
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    (query,) = [c["query"] for c in endpoint.job_requests()]
    assert query["query"] == (
        "SELECT id, at FROM `ml`.`scores` WHERE name = @name AND day >= @day "
        "AND id::text <> ':no'"
    )
    assert hostile not in query["query"]
    assert query["parameterMode"] == "NAMED"
    assert query["queryParameters"] == [
        {"name": "name", "parameterType": {"type": "STRING"}, "parameterValue": {"value": hostile}},
        {"name": "day", "parameterType": {"type": "DATE"},
         "parameterValue": {"value": "2024-01-01"}},
    ]
    with pytest.raises(WarehouseError, match=":missing"):
        warehouse.read("SELECT :missing")


def test_replace_loads_parquet_into_staging_then_copies_with_write_truncate(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    frame = scores([1, 2, 3])
    result = warehouse.write(frame, "scores", mode="replace")
    assert result.rows == 3
    load, copy = endpoint.job_requests()
    stage = load["load"]["destinationTable"]
    assert load["load"]["sourceFormat"] == "PARQUET"
    assert load["load"]["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["load"]["parquetOptions"] == {"enableListInference": True}
    assert (stage["projectId"], stage["datasetId"]) == ("knot-proj", "ml")
    assert stage["tableId"].startswith("_knot_stage_scores_")
    (upload,) = [r.upload for r in endpoint.requests if r.upload is not None]
    assert upload.to_pandas().equals(frame)
    assert [t["tableId"] for t in copy["copy"]["sourceTables"]] == [stage["tableId"]]
    assert copy["copy"]["destinationTable"]["tableId"] == "scores"
    assert copy["copy"]["writeDisposition"] == "WRITE_TRUNCATE"
    # The staging table is deleted after the copy.
    deleted = [r.path for r in endpoint.requests if r.method == "DELETE"]
    assert deleted == [f"/bigquery/v2/projects/knot-proj/datasets/ml/tables/{stage['tableId']}"]
    assert set(endpoint.tables) == {"scores"}


def test_upsert_is_one_merge_with_quoted_identifiers(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    warehouse.write(scores([1]), "scores")
    endpoint.requests.clear()
    frame = pd.DataFrame({"id": [1, 2], "churn score": [0.5, 0.7]})
    warehouse.write(frame, "scores", mode="upsert", keys=["id"], evolve=True)
    load, alter, merge = endpoint.job_requests()
    stage = load["load"]["destinationTable"]["tableId"]
    assert alter["query"]["query"] == (
        "ALTER TABLE `knot-proj`.`ml`.`scores` ADD COLUMN `churn score` FLOAT64"
    )
    assert merge["query"]["query"] == (
        f"MERGE INTO `knot-proj`.`ml`.`scores` AS t USING `knot-proj`.`ml`.`{stage}` AS s "
        "ON t.`id` = s.`id` WHEN MATCHED THEN UPDATE SET t.`churn score` = s.`churn score` "
        "WHEN NOT MATCHED THEN INSERT (`id`, `churn score`) VALUES (s.`id`, s.`churn score`)"
    )


def test_append_is_one_insert_select(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    warehouse.write(scores([1]), "analytics.scores")
    endpoint.requests.clear()
    warehouse.write(scores([2]), "analytics.scores", mode="append")
    load, insert = endpoint.job_requests()
    stage = load["load"]["destinationTable"]
    assert stage["datasetId"] == "analytics"
    assert insert["query"]["query"] == (
        "INSERT INTO `knot-proj`.`analytics`.`scores` (`id`, `score`) "
        f"SELECT `id`, `score` FROM `knot-proj`.`analytics`.`{stage['tableId']}` AS s"
    )


def test_failed_load_changes_nothing_and_removes_the_stage(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    warehouse.write(scores([1]), "scores")
    endpoint.requests.clear()
    endpoint.fail_next_load = "Error while reading data"
    for mode in ("replace", "append"):
        endpoint.fail_next_load = "Error while reading data"
        with pytest.raises(WarehouseError, match="Error while reading data"):
            warehouse.write(scores([2]), "scores", mode=mode)
    assert [list(c) for c in endpoint.job_requests()] == [["load"], ["load"]]
    assert set(endpoint.tables) == {"scores"}
    assert len([r for r in endpoint.requests if r.method == "DELETE"]) == 2


def test_modes_and_identifiers_are_checked_before_any_request(
    warehouse: BigQueryWarehouse, endpoint: BigQueryEndpoint
) -> None:
    warehouse.write(scores([1]), "scores")
    endpoint.requests.clear()
    with pytest.raises(TableExistsError):
        warehouse.write(scores([2]), "scores", mode="fail")
    assert endpoint.job_requests() == []
    for bad in ["x`; DROP TABLE scores; --", "a'b", "a.b.c", "tab\\le"]:
        with pytest.raises(InvalidIdentifierError):
            warehouse.write(scores([1]), bad)
        with pytest.raises(InvalidIdentifierError):
            warehouse.write(pd.DataFrame({bad: [1]}), "t")
        with pytest.raises(InvalidIdentifierError):
            warehouse.read_table("scores", columns=[bad])
    assert endpoint.job_requests() == []
    assert warehouse.table_exists("scores") and not warehouse.table_exists("nope")
    assert warehouse.check_connection() == "BigQuery dataset knot-proj.ml in US"
