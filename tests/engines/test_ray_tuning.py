"""``tuning_flow`` on Ray (prefect-ray's ``RayTaskRunner`` on a local Ray the flow starts)
and on Dask: the same trials, metrics and best trial as the default runner (threads)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from prefect import flow, task

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import tuning_flow
from knot_prefect.flows.ray_runner import started_ray_runner
from tests.tuning import trainers

pytestmark = pytest.mark.heavy

ALPHAS = {"alpha": {"kind": "log_uniform", "low": 0.01, "high": 100.0}}


def search(tracking: MLflowTracking, **options: Any) -> dict[str, Any]:
    return tuning_flow(train_fn=trainers.linear_model, search_space=ALPHAS, trials=4,
                       metric="rmse", mode="min", seed=11, tracking=tracking, **options)


def test_ray_and_dask_run_the_same_trials_to_the_same_best_trial_as_threads(
    mlflow_server: str, dask_scheduler: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("prefect_ray")
    # runner="ray" is a temporary local Ray, even where ray.init() alone would connect
    # to another cluster (RAY_ADDRESS, or the file a stopped `ray start` head leaves).
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    tracking = MLflowTracking(tracking_uri=mlflow_server,
                              experiment_name=f"ray-{uuid.uuid4().hex[:8]}")
    threads = search(tracking)
    on_ray = search(tracking, runner="ray", dask_workers=2,
                    trial_resources={"num_cpus": 1})
    on_dask = search(tracking, runner=dask_scheduler)
    for other in (on_ray, on_dask):
        assert other["trials_finished"] == threads["trials_finished"] == 4
        assert other["best_trial"] == threads["best_trial"]
        assert other["best_params"] == threads["best_params"]
        assert other["best_metrics"]["rmse"] == pytest.approx(
            threads["best_metrics"]["rmse"], abs=1e-12)
        assert [t["trial"] for t in other["trials"]] == [t["trial"] for t in threads["trials"]]
        assert other["search_run_id"] != threads["search_run_id"]


def test_trial_resources_are_checked_before_any_run() -> None:
    tracking = MLflowTracking(experiment_name="never")
    with pytest.raises(ConfigurationError, match="runner='ray'"):
        search(tracking, trial_resources={"num_cpus": 1})
    with pytest.raises(ConfigurationError, match="not \\['cpus'\\]"):
        search(tracking, runner="ray", trial_resources={"cpus": 1})
    with pytest.raises(ConfigurationError, match="num_gpus"):
        search(tracking, runner="ray", trial_resources={"num_gpus": -1})


@task
def niceness() -> int:
    return os.nice(0)


@flow
def niceness_on_local_ray() -> int:
    with started_ray_runner("ray", workers=1) as runner:
        return int(runner.submit(niceness, {}).result())


def test_a_local_ray_runs_trials_at_the_flow_processes_priority() -> None:
    # Ray starts its workers at niceness 15: on a machine the flow shares with its
    # servers and other jobs, trials then wait behind everything else.
    pytest.importorskip("prefect_ray")
    assert niceness_on_local_ray() == os.nice(0)
