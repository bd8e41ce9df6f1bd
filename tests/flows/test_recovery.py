"""Retries and re-runs: nothing expensive is redone, no key is published twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect.states import State

from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
from knot_prefect.demo.params import scoring_parameters, training_parameters
from knot_prefect.flows import batch_inference_flow, training_flow
from tests.flows.conftest import CUSTOMERS

pytestmark = pytest.mark.heavy

BAD_ROWS = 3


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


@pytest.fixture(scope="module")
def champion(demo_world: dict[str, Any]) -> str:
    value(training_flow(**training_parameters(model_name="churn-recovery")))
    return "churn-recovery"


def key_counts(warehouse: DuckDBWarehouse, table: str) -> dict[int, int]:
    frame = warehouse.read(f"select customer_id, count(*) as n from {table} group by 1")
    return dict(zip(frame["customer_id"], frame["n"], strict=True))


def test_failed_run_leaves_table_unchanged_and_rerun_publishes_each_key_once(
    demo_world: dict[str, Any], champion: str
) -> None:
    warehouse = DuckDBWarehouse.load("local-warehouse")
    half = CUSTOMERS // 2
    run = scoring_parameters(model_name=champion, as_of=demo_world["as_of"],
                             output_table="scores_recovery")
    value(batch_inference_flow(**{
        **run, "entity_sql": f"select customer_id, plan from customers where customer_id <= {half}"
    }))
    assert len(key_counts(warehouse, "scores_recovery")) == half

    # The table drifts from what the flow writes: the next run fails at publish...
    warehouse.execute("alter table scores_recovery drop column scored_at")
    state = batch_inference_flow(**run, return_state=True)
    assert state.is_failed()
    assert "scored_at" in state.message
    # ...and leaves the table exactly as it was: no partial write.
    assert key_counts(warehouse, "scores_recovery") == dict.fromkeys(range(1, half + 1), 1)

    # Once the table is fixed, re-running publishes every key exactly once.
    warehouse.execute("alter table scores_recovery add column scored_at timestamptz")
    value(batch_inference_flow(**run))
    counts = key_counts(warehouse, "scores_recovery")
    assert len(counts) == CUSTOMERS - BAD_ROWS
    assert set(counts.values()) == {1}


def test_model_signature_mismatch_names_missing_columns_before_scoring(
    demo_world: dict[str, Any], champion: str
) -> None:
    warehouse = DuckDBWarehouse.load("local-warehouse")
    state = batch_inference_flow(
        **scoring_parameters(
            model_name=champion,
            as_of=demo_world["as_of"],
            features=["customer_activity:sessions_7d", "customer_activity:minutes_7d"],
            output_table="scores_signature",
        ),
        return_state=True,
    )
    assert state.is_failed()
    assert "tickets_14d" in state.message and "monthly_fee" in state.message
    assert not warehouse.table_exists("scores_signature")


def test_flow_retry_does_not_retrain(
    demo_world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("KNOT_TEST_TRAIN_CALLS", str(calls))
    flaky = training_flow.with_options(retries=1, retry_delay_seconds=0)
    # Promotion fails (no such metric) after training, on both attempts of the run.
    retry = training_parameters(model_name="churn-retry",
                                trainer="tests.flows.trainers:counting_trainer")
    state = flaky(**retry, promotion_metric="no_such_metric", return_state=True)
    assert state.is_failed()
    assert calls.read_text().count("call") == 1  # the retry reused the trained model

    # A new run on the same data trains again: the cache is scoped to the run.
    value(training_flow(**retry))
    assert calls.read_text().count("call") == 2
