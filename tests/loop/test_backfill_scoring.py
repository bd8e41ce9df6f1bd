"""Backfills of predictions: ``batch_inference_flow(start=, end=, partition=)``.

Each day's rows are scored and published in a task run of their own; a day whose rows
break the scoring contract fails only itself (the others publish, the artifact says
which contract result each day had), and the re-run after the fix scores only that day.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from knot_prefect.errors import ConfigurationError
from tests.loop.test_backfill import task_runs
from tests.triggers.conftest import log_and_register, rows

MODEL = "loop-backfill-scoring"
# Partition results outlive a test session: a warehouse document of its own per session.
WAREHOUSE = f"backfill-warehouse-{uuid.uuid4().hex[:8]}"
DAY = timedelta(days=1)
START = datetime(2026, 3, 1)
EVENTS = "SELECT * FROM events WHERE event_at >= :start AND event_at < :end"
CONTRACT = """\
schema_type: dataframe
columns:
  x1:
    dtype: float64
    checks:
      less_than_or_equal_to: 50
"""


def events(bad_day: int | None) -> pd.DataFrame:
    """Ten rows a day over three days; ``bad_day``'s ``x1`` breaks the contract."""
    data = rows(seed=5).head(30).drop(columns="label")
    day = pd.Series(range(30)) // 10
    data.insert(0, "customer_id", range(1, 31))
    data.insert(1, "event_at", pd.Timestamp(START, tz="UTC") + pd.to_timedelta(day, unit="D")
                + pd.to_timedelta(day.index % 10, unit="h"))
    if bad_day is not None:
        data.loc[day == bad_day, "x1"] = 100.0
    return data


@pytest.fixture(scope="module")
def world(tracking_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sklearn.linear_model import LogisticRegression

    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    version = log_and_register(tracking_store, MODEL, LogisticRegression(), rows(seed=5))
    tracking_store.get_client().set_registered_model_alias(MODEL, "champion", str(version))
    tracking_store.save("backfill-mlflow", overwrite=True)
    folder = tmp_path_factory.mktemp("backfill-scoring")
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    warehouse.save(WAREHOUSE, overwrite=True)
    DataContract(schema_yaml=CONTRACT, version_label="events-v1").save(
        "backfill-events", overwrite=True)
    return warehouse


def backfill(**options: Any) -> Any:
    from knot_prefect.flows import batch_inference_flow

    return batch_inference_flow(
        entity_sql=EVENTS, key_columns=["customer_id"], model_name=MODEL,
        output_table="scores", warehouse=WAREHOUSE, tracking="backfill-mlflow",
        contract="backfill-events", feature_source="warehouse", start=START,
        end=START + 3 * DAY, partition="1d", return_state=True, **options)


def partition_artifact(state: Any) -> list[dict[str, Any]]:
    """The run's table artifact of its partitions."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["batch-inference-backfill-scores"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    table: list[dict[str, Any]] = json.loads(artifact.data)
    return table


def test_a_failing_partition_fails_alone_and_the_rerun_scores_only_it(world: Any) -> None:
    world.write(events(bad_day=1), "events", mode="replace")
    first = backfill()
    assert first.is_failed()
    assert "1 of 3 partition(s)" in first.message
    assert "2026-03-02T00:00:00+00:00" in first.message and "x1" in first.message
    runs = task_runs(first, "batch-inference-backfill")
    assert sorted(runs.values()) == ["Completed", "Completed", "Failed"]
    # The good days are published.
    published = world.read_arrow("SELECT customer_id FROM scores ORDER BY customer_id")
    assert published.column(0).to_pylist() == [*range(1, 11), *range(21, 31)]
    table = partition_artifact(first)
    assert [row["status"] for row in table] == ["done", "failed", "done"]
    contracts = [row.get("contract") or "" for row in table]
    assert re.fullmatch(r"events-v1\+\w+: passed, 0 row\(s\) quarantined", contracts[0])
    assert contracts[1:] == ["", contracts[0]]
    assert "x1" in table[1]["error"] and table[0]["error"] == ""

    world.write(events(bad_day=None), "events", mode="replace")
    second = backfill()
    assert second.is_completed(), second
    report = second.result()
    assert [p["status"] for p in report["partitions"]] == ["skipped", "scored", "skipped"]
    assert report["rows_published"] == 30
    assert sorted(task_runs(second, "batch-inference-backfill").values()) == [
        "Cached", "Cached", "Completed"]
    count = world.read_arrow("SELECT count(*) AS n FROM scores").to_pandas()["n"][0]
    assert count == 30


def test_a_destination_recreated_at_the_same_path_is_scored_again(world: Any) -> None:
    world.write(events(bad_day=None), "events", mode="replace")
    assert backfill().is_completed()  # every partition done (here or by an earlier test)
    # The same path, a new, empty database: what was published there is gone.
    Path(world.path).unlink()
    world.write(events(bad_day=None), "events", mode="replace")
    again = backfill()
    assert again.is_completed(), again
    assert [p["status"] for p in again.result()["partitions"]] == ["scored"] * 3
    count = world.read_arrow("SELECT count(*) AS n FROM scores").to_pandas()["n"][0]
    assert count == 30
    # Published again, the partitions are done: the next run skips them all.
    assert [p["status"] for p in backfill().result()["partitions"]] == ["skipped"] * 3


@pytest.mark.parametrize(("options", "message"), [
    ({"start": None}, "needs both start= and partition="),
    ({"entity_sql": "SELECT * FROM events"}, "the :start and :end placeholders"),
    ({"partition": "1s"}, "at most 1000"),
])
def test_a_bad_scoring_backfill_is_refused_before_anything_runs(
    world: Any, options: dict[str, Any], message: str
) -> None:
    from knot_prefect.flows import batch_inference_flow

    given = {"entity_sql": EVENTS, "start": START, "partition": "1d", **options}
    with pytest.raises(ConfigurationError, match=message):
        batch_inference_flow(model_name=MODEL, output_table="scores",
                             warehouse=WAREHOUSE, end=START + 3 * DAY, **given)
