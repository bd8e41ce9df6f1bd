"""``batch_inference_flow`` on Dask: a real scheduler with two workers, a temporary
local cluster, and the streamed path, each compared with scoring in the flow process."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest
from prefect.states import State

from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
from knot_prefect.demo.params import scoring_parameters
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import batch_inference_flow
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.scale_out.conftest import CUSTOMERS, MODEL

pytestmark = pytest.mark.heavy

BAD_ROWS = 3  # customers with an unknown plan, quarantined by the scoring contract
PREDICTION = "probability"


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


def scores(table: str) -> pd.DataFrame:
    frame = DuckDBWarehouse.load("local-warehouse").read(f"select * from {table}")
    return frame.sort_values("customer_id").reset_index(drop=True)


def score(world: dict[str, Any], table: str, **options: Any) -> dict[str, Any]:
    return value(batch_inference_flow(**scoring_parameters(
        model_name=MODEL, as_of=world["as_of"], output_table=table, **options)))


def score_task_runs(flow_run_id: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="score-partition")),
            )

    return asyncio.run(read())


@pytest.fixture(scope="module")
def reference(scoring_world: dict[str, Any]) -> pd.DataFrame:
    """Predictions scored in the flow process: what every Dask run must reproduce."""
    summary = score(scoring_world, "scores_in_process")
    assert summary["rows_published"] == CUSTOMERS - BAD_ROWS
    return scores("scores_in_process")


def assert_same_predictions(table: str, expected: pd.DataFrame) -> pd.DataFrame:
    actual = scores(table)
    assert actual["customer_id"].tolist() == expected["customer_id"].tolist()
    pd.testing.assert_series_equal(actual[PREDICTION], expected[PREDICTION])
    assert actual[list(LINEAGE_COLUMNS)].notna().all().all()
    return actual


def test_existing_scheduler_scores_partitions_on_the_workers(
    scoring_world: dict[str, Any], reference: pd.DataFrame, dask_scheduler: str
) -> None:
    summary = score(scoring_world, "scores_scheduler", dask_address=dask_scheduler,
                    batch_rows=100)
    assert summary["rows_quarantined"] == BAD_ROWS
    assert summary["rows_published"] == CUSTOMERS - BAD_ROWS
    table = assert_same_predictions("scores_scheduler", reference)
    runs = score_task_runs(table["flow_run_id"].iloc[0])
    # The valid rows in partitions of 100, each scored by one task run.
    assert len(runs) == -(-(CUSTOMERS - BAD_ROWS) // 100)
    assert {run.state_name for run in runs} == {"Completed"}


def test_temporary_local_cluster_streams_batches_and_reruns_without_duplicates(
    scoring_world: dict[str, Any], reference: pd.DataFrame
) -> None:
    # The bad fraction holds per batch when streaming; the last batch (44 rows) holds
    # the 3 bad customers, 6.8%.
    options = {"dask_address": "local", "dask_workers": 2, "stream": True, "batch_rows": 64,
               "max_bad_fraction": 0.1}
    summary = score(scoring_world, "scores_streamed", **options)
    assert summary["rows_read"] == CUSTOMERS
    assert summary["rows_quarantined"] == BAD_ROWS
    assert summary["rows_published"] == CUSTOMERS - BAD_ROWS
    first = assert_same_predictions("scores_streamed", reference)
    runs = score_task_runs(first["flow_run_id"].iloc[0])
    assert len(runs) == -(-CUSTOMERS // 64)  # one partition per streamed batch

    # A second run upserts the same keys: still one row per customer, newer lineage.
    score(scoring_world, "scores_streamed", **options)
    again = assert_same_predictions("scores_streamed", reference)
    assert again["flow_run_id"].nunique() == 1
    assert again["flow_run_id"].iloc[0] != first["flow_run_id"].iloc[0]
    quarantined = DuckDBWarehouse.load("local-warehouse").read(
        "select * from churn_scoring_quarantine")
    assert set(quarantined["plan"]) == {"legacy-unknown"}


def test_with_options_task_runner_on_the_scheduler_streams(
    scoring_world: dict[str, Any], reference: pd.DataFrame, dask_scheduler: str
) -> None:
    from prefect_dask import DaskTaskRunner

    on_dask = batch_inference_flow.with_options(
        task_runner=DaskTaskRunner(address=dask_scheduler))
    summary = value(on_dask(**scoring_parameters(
        model_name=MODEL, as_of=scoring_world["as_of"], output_table="scores_with_options",
        stream=True, batch_rows=150)))
    assert summary["rows_published"] == CUSTOMERS - BAD_ROWS
    table = assert_same_predictions("scores_with_options", reference)
    assert len(score_task_runs(table["flow_run_id"].iloc[0])) == 2


def test_stream_with_warehouse_features_stops_at_a_failing_check(
    scoring_world: dict[str, Any],
) -> None:
    # The model's inputs read from the warehouse with the rows; no feature store involved.
    warehouse = DuckDBWarehouse.load("local-warehouse")
    sql = ("select c.customer_id, c.plan, c.monthly_fee, a.sessions_7d, a.minutes_7d, "
           "a.tickets_14d, a.failed_payments_14d "
           "from customers c join customer_activity a using (customer_id) "
           "where a.event_timestamp = (select max(event_timestamp) from customer_activity)")
    # These rows carry feature columns, so their quarantine is a table of its own.
    summary = score(scoring_world, "scores_from_warehouse", stream=True, batch_rows=100,
                    feature_source="warehouse", entity_sql=sql,
                    quarantine_table="scoring_rows_quarantine")
    assert summary["rows_published"] == CUSTOMERS - BAD_ROWS
    assert summary["feature_views"] == "warehouse columns"

    # Bounds no churn probability meets: the first batch fails its check, unwritten.
    with pytest.raises(Exception, match=r"scores_bounded-(prediction|probability)-(min|max)"):
        score(scoring_world, "scores_bounded", stream=True, batch_rows=100,
              feature_source="warehouse", entity_sql=sql, prediction_bounds=[0.4, 0.6],
              quarantine_table="scoring_rows_quarantine")
    assert not warehouse.table_exists("scores_bounded")


def test_bad_scheduler_address_says_what_to_pass(scoring_world: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"tcp://HOST:PORT.*'local'"):
        score(scoring_world, "scores_nowhere", dask_address="scheduler:8786")
