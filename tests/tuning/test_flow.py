"""``tuning_flow`` end to end on the default task runner and on a real Dask scheduler:
nested MLflow runs, ranking, failed trials, the challenger alias."""

from __future__ import annotations

import os
from typing import Any

import pytest
from prefect.states import State

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import tuning_flow
from knot_prefect.tuning import TuningFailedError
from knot_prefect.tuning.space import SearchSpaceError, plan_trials
from knot_prefect.tuning.trial import ERROR_TAG, PARENT_TAG, TRIAL_TAG
from tests.tuning import trainers
from tests.tuning.conftest import unique

GRID = {"x": [0.0, trainers.FAIL_AT, 1.0], "y": ["a", "b"]}
RANDOM = {"x": {"kind": "uniform", "low": -1.0, "high": 3.0}, "y": ["a", "b"]}
ALPHAS = {"alpha": {"kind": "log_uniform", "low": 1e-3, "high": 1e3}}


def children(tracking: MLflowTracking, parent_id: str) -> dict[int, Any]:
    """The search's trial runs by trial number."""
    client = tracking.get_client()
    experiment = client.get_run(parent_id).info.experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'")
    return {int(run.data.tags[TRIAL_TAG]): run for run in runs}


def trials_table(flow_run_id: Any) -> list[dict[str, Any]]:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            key=ArtifactFilterKey(any_=["tuning-trials"]),
        ))
    assert len(artifacts) == 1
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


def run(**options: Any) -> tuple[dict[str, Any], Any]:
    state = tuning_flow(return_state=True, **options)
    assert isinstance(state, State)
    return state.result(), state.state_details.flow_run_id


def check_grid_search(tracking: MLflowTracking, runner: str | None) -> dict[int, Any]:
    """A grid with two diverging points: recorded FAILED, the rest ranked."""
    # In this process the import path works (as a deployment passes it); workers in
    # other processes get the function itself, pickled by value.
    train_fn = ("tests.tuning.trainers:quadratic_with_failure" if runner is None
                else trainers.quadratic_with_failure)
    summary, flow_run_id = run(
        train_fn=train_fn, search_space=GRID, trials=None,
        metric="score", strategy="grid", tracking=tracking, runner=runner)
    points = plan_trials(GRID, None, "grid", seed=0)
    failing = {i for i, p in enumerate(points) if p["x"] == trainers.FAIL_AT}
    assert summary["trials_failed"] == len(failing)
    assert summary["trials_finished"] == len(points) - len(failing)

    runs = children(tracking, summary["search_run_id"])
    assert sorted(runs) == list(range(len(points)))
    for index, child in runs.items():
        assert child.data.params == {k: str(v) for k, v in points[index].items()}
        if index in failing:
            assert child.info.status == "FAILED"
            assert "ValueError: diverged" in child.data.tags[ERROR_TAG]
        else:
            assert child.info.status == "FINISHED"
            expected = trainers.quadratic(points[index])["score"]
            assert child.data.metrics["score"] == pytest.approx(expected)
    finished = {i: r.data.metrics["score"] for i, r in runs.items() if i not in failing}
    best = max(finished, key=lambda i: (finished[i], -i))
    assert summary["best_trial"] == best
    assert summary["best_params"] == points[best]
    assert summary["best_run_id"] == runs[best].info.run_id

    search = tracking.get_client().get_run(summary["search_run_id"])
    assert search.info.status == "FINISHED"
    assert search.data.metrics["best_score"] == finished[best]
    assert search.data.metrics["trials_failed"] == len(failing)

    table = trials_table(flow_run_id)
    assert [row["trial"] for row in table[: len(finished)]] == sorted(
        finished, key=lambda i: (-finished[i], i))
    failed_rows = [row for row in table if row["status"] == "FAILED"]
    assert {row["trial"] for row in failed_rows} == failing
    assert all("diverged" in row["error"] for row in failed_rows)
    assert all(row["mlflow_run_id"] == runs[row["trial"]].info.run_id for row in table)
    return runs


def register_champion(tracking: MLflowTracking, name: str) -> int:
    """A champion version of ``name`` that a search must not touch."""
    from knot_prefect.tasks import register_model
    from knot_prefect.tracking import tracked_run

    with tracked_run(tracking, run_name="champion"):
        import mlflow
        from sklearn.dummy import DummyRegressor

        info = mlflow.sklearn.log_model(DummyRegressor().fit([[0, 0, 0]], [0]), name="model")
    version = register_model.fn(str(info.model_uri), name, tracking).version
    tracking.get_client().set_registered_model_alias(name, "champion", str(version))
    return version


def check_random_search_registers_challenger(tracking: MLflowTracking,
                                             runner: str | None) -> dict[str, Any]:
    name = unique("tuned")
    champion = register_champion(tracking, name)
    summary, _ = run(train_fn=trainers.linear_model, search_space=ALPHAS, trials=4,
                     metric="rmse", mode="min", seed=3, tracking=tracking,
                     model_name=name, runner=runner)
    points = plan_trials(ALPHAS, 4, "random", seed=3)
    runs = children(tracking, summary["search_run_id"])
    assert [float(runs[i].data.params["alpha"]) for i in range(4)] == pytest.approx(
        [p["alpha"] for p in points])
    rmse = {i: r.data.metrics["rmse"] for i, r in runs.items()}
    best = min(rmse, key=lambda i: (rmse[i], i))
    assert summary["best_trial"] == best

    client = tracking.get_client()
    model = client.get_registered_model(name)
    assert int(model.aliases["champion"]) == champion
    challenger = client.get_model_version(name, model.aliases["challenger"])
    assert int(challenger.version) == summary["model_version"] != champion
    assert challenger.run_id == runs[best].info.run_id
    assert challenger.tags["knot.tuning.search_run_id"] == summary["search_run_id"]
    return summary


# -- the default task runner (threads of the flow process), embedded SQLite store -----------
def test_grid_search_on_the_default_runner(embedded: MLflowTracking) -> None:
    check_grid_search(embedded, runner=None)


def test_random_search_on_the_default_runner_registers_the_challenger(
    embedded: MLflowTracking,
) -> None:
    check_random_search_registers_challenger(embedded, runner=None)


def test_every_trial_failing_fails_the_search_clearly(embedded: MLflowTracking) -> None:
    state = tuning_flow(trainers.always_fails, {"x": [1, 2]}, None, "score",
                        strategy="grid", tracking=embedded, return_state=True)
    assert state.is_failed()
    with pytest.raises(TuningFailedError) as caught:
        state.result()
    message = str(caught.value)
    assert "All 2 trials of the search failed" in message
    assert "RuntimeError: cannot train" in message
    client = embedded.get_client()
    experiment = client.get_experiment_by_name(embedded.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    search = [r for r in runs if PARENT_TAG not in r.data.tags]
    assert len(search) == 1 and search[0].info.status == "FAILED"
    trials = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FAILED"}


def test_bad_input_is_refused_before_any_run(embedded: MLflowTracking) -> None:
    bad_space = {"lr": {"kind": "log_uniform", "low": -1, "high": 1}}
    with pytest.raises(SearchSpaceError, match="'lr'"):
        tuning_flow(trainers.quadratic, bad_space, 4, "score", tracking=embedded)
    with pytest.raises(ConfigurationError, match="champion"):
        tuning_flow(trainers.quadratic, GRID, None, "score", strategy="grid",
                    tracking=embedded, alias="champion")
    with pytest.raises(ConfigurationError, match="Cannot import"):
        tuning_flow("tests.tuning.trainers:no_such_function", GRID, None, "score",
                    strategy="grid", tracking=embedded)
    client = embedded.get_client()
    experiment = client.get_experiment_by_name(embedded.experiment_name)
    assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_a_missing_metric_fails_the_trial_naming_what_was_returned(
    embedded: MLflowTracking,
) -> None:
    summary, _ = run(train_fn=trainers.quadratic, search_space={"x": [0.0, 1.0]},
                     trials=None, metric="score", strategy="grid", tracking=embedded)
    assert summary["trials_failed"] == 0
    state = tuning_flow(trainers.quadratic, {"x": [0.0]}, None, "accuracy",
                        strategy="grid", tracking=embedded, return_state=True)
    with pytest.raises(TuningFailedError, match=r"no metric 'accuracy'.*\['pid', 'score'\]"):
        state.result()


# -- a real Dask scheduler with two worker processes, a real MLflow server ---------------
@pytest.mark.heavy
def test_grid_search_on_a_dask_scheduler(dask_scheduler: str, served: MLflowTracking) -> None:
    runs = check_grid_search(served, runner=dask_scheduler)
    pids = {r.data.metrics["pid"] for r in runs.values() if "pid" in r.data.metrics}
    assert float(os.getpid()) not in pids  # trained on the workers, not here
    assert len(pids) >= 1


@pytest.mark.heavy
def test_random_search_on_a_dask_scheduler_registers_the_challenger(
    dask_scheduler: str, served: MLflowTracking
) -> None:
    check_random_search_registers_challenger(served, runner=dask_scheduler)
