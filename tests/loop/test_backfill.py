"""Backfills by partition: ``feature_materialization_flow(start=, end=, partition=)``.

Each partition is a task run of its own; a re-run of a wider window skips the
partitions already done and runs only the new ones; bad windows are refused first.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.errors import ConfigurationError


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from knot_prefect.demo.data import generate_churn_dataset
    from knot_prefect.demo.seed import write_feature_repo

    tables = generate_churn_dataset(customers=15, days=6, seed=4)
    return write_feature_repo(tmp_path_factory.mktemp("backfill") / "feast", tables)


def task_runs(state: Any, name: str = "feast-backfill") -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    return {run.name: run.state.name for run in runs if run.name.startswith(name)}


def test_partitions_run_once_each_and_a_rerun_skips_the_done_ones(
    repo: Path, tmp_path: Path
) -> None:
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.demo.data import DATASET_END, generate_churn_dataset
    from knot_prefect.demo.seed import write_feature_repo
    from knot_prefect.flows import feature_materialization_flow

    store = FeastFeatureStore(repo_path=str(repo))
    day = timedelta(days=1)
    first = feature_materialization_flow(store, start=DATASET_END - 4 * day,
                                         end=DATASET_END - 2 * day, partition="1d",
                                         views=["customer_activity"], return_state=True)
    assert first.is_completed(), first
    done = first.result()["partitions"]
    assert [p["status"] for p in done] == ["materialized"] * 2
    assert all(p["rows"]["customer_activity"] == 15 for p in done)
    assert sorted(task_runs(first).values()) == ["Completed", "Completed"]

    second = feature_materialization_flow(store, start=DATASET_END - 4 * day,
                                          end=DATASET_END, partition="1d", apply=False,
                                          views=["customer_activity"], return_state=True)
    assert second.is_completed(), second
    report = second.result()
    assert [p["status"] for p in report["partitions"]] == ["skipped"] * 2 + ["materialized"] * 2
    assert [p["start"] for p in report["partitions"][:2]] == [p["start"] for p in done]
    runs = task_runs(second)
    assert sorted(runs.values()) == ["Cached", "Cached", "Completed", "Completed"]
    assert report["materialized"] == [{"view": "customer_activity", "rows": 60}]

    again = feature_materialization_flow(store, start=DATASET_END - 1 * day,
                                         end=DATASET_END, partition="1d", apply=False,
                                         views=["customer_activity"], refresh=True)
    assert [p["status"] for p in again["partitions"]] == ["materialized"]

    # Another repo of the same project is another online store: nothing of it is done.
    other = write_feature_repo(tmp_path / "other", generate_churn_dataset(
        customers=15, days=6, seed=4))
    elsewhere = feature_materialization_flow(
        FeastFeatureStore(repo_path=str(other)), start=DATASET_END - 4 * day,
        end=DATASET_END - 2 * day, partition="1d", views=["customer_activity"])
    assert [p["status"] for p in elsewhere["partitions"]] == ["materialized"] * 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"partition": "1d"}, "needs both start= and partition="),
    ({"start": "end", "partition": "1d"}, "must be before end"),
    ({"start": "day-ago", "partition": "daily"}, "partition 'daily' is not a duration"),
    ({"start": "day-ago", "partition": "1s"}, "at most 1000"),
])
def test_a_bad_backfill_window_is_refused_before_anything_runs(
    repo: Path, kwargs: dict[str, Any], message: str
) -> None:
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.flows import feature_materialization_flow

    moments = {"end": DATASET_END, "day-ago": DATASET_END - timedelta(days=1)}
    given = {k: moments.get(v, v) for k, v in kwargs.items()}
    with pytest.raises(ConfigurationError, match=message):
        feature_materialization_flow(FeastFeatureStore(repo_path=str(repo)),
                                     end=DATASET_END, apply=False, **given)


def test_a_failing_partition_fails_only_itself_and_the_rerun_runs_only_it() -> None:
    """The helper both backfills share: the other partitions finish, the artifact lists
    every partition, the run fails naming the failed one, the re-run runs only it."""
    import uuid
    from datetime import datetime

    from prefect import flow

    from knot_prefect.flows.partitions import partitions, publish_report, run_partitions

    calls: list[int] = []
    key = f"test-backfill:{uuid.uuid4()}"

    @flow(name="knot-test-partitions")
    def days(broken: int | None) -> list[dict[str, Any]]:
        def work(start: datetime, end: datetime) -> dict[str, Any]:
            calls.append(start.day)
            if start.day == broken:
                raise ValueError(f"day {broken} breaks its contract")
            return {"day": start.day}

        report = run_partitions(work, "test-day", key, partitions(
            datetime(2026, 5, 1), datetime(2026, 5, 4), "1d"))
        publish_report(report, f"test-days-{key[-8:]}", "three days", lambda done: done)
        return report

    first = days(2, return_state=True)
    assert first.is_failed()
    assert "1 of 3 partition(s) of the backfill of three days failed" in first.message
    assert "[2026-05-02T00:00:00+00:00, 2026-05-03T00:00:00+00:00): ValueError: day 2 " \
        "breaks its contract" in first.message
    assert calls == [1, 2, 3]
    assert sorted(task_runs(first, "test-day").values()) == ["Completed", "Completed",
                                                             "Failed"]
    second = days(None)
    assert calls == [1, 2, 3, 2]
    assert [(row["status"], row["result"]) for row in second] == [
        ("skipped", {"day": 1}), ("done", {"day": 2}), ("skipped", {"day": 3})]
