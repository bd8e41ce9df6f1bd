"""A step of a flow runs on another work pool as a child flow run (real server, real
process workers): the same model as a local run, the child's failure in the parent's,
and cancelling the parent cancels the child."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect import flow

from knot_prefect.compute import RemoteStepError, run_step_on
from tests.compute.conftest import CPU_POOL, GPU_HOST, GPU_POOL, STORAGE
from tests.services import wait_for

# Real worker processes start each run: on a loaded machine that takes minutes.
pytestmark = [pytest.mark.heavy, pytest.mark.timeout(1800)]

STEPS = Path(__file__).with_name("steps.py")
WAREHOUSE = "compute-warehouse"
TRACKING = "compute-mlflow"


@pytest.fixture(scope="module")
def training_blocks(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A DuckDB warehouse with 160 labelled rows and an MLflow SQLite store, saved."""
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    folder = tmp_path_factory.mktemp("compute-training")
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=160), rng.normal(size=160)
    rows = pd.DataFrame({"row_id": np.arange(160, dtype="int64"), "x1": x1, "x2": x2,
                         "label": (x1 + 0.5 * x2 > 0).astype("int64")})
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    warehouse.write(rows, "training_rows", mode="replace")
    warehouse.save(WAREHOUSE, overwrite=True)
    tracking = MLflowTracking(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                              artifact_location=(folder / "artifacts").as_uri(),
                              experiment_name="compute")
    tracking.save(TRACKING, overwrite=True)
    return tracking


def children_of(client: Any, flow_run_id: Any) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs: list[Any] = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
    return runs


def test_training_step_on_the_gpu_pool_matches_a_local_run(
    server: Any, gpu_worker: Path, training_blocks: Any
) -> None:
    from knot_prefect.flows import training_flow

    common = {"entity_sql": "training_rows", "target": "label", "key_columns": ["row_id"],
              "task": "binary", "warehouse": WAREHOUSE, "tracking": TRACKING}
    local = training_flow(model_name="compute-local", return_state=True, **common).result()
    state = training_flow(model_name="compute-remote", train_on=GPU_POOL, return_state=True,
                          **common)
    log = gpu_worker.read_text(errors="replace")[-3000:]
    assert state.is_completed(), f"{state!r}\nworker log:\n{log}"
    remote = state.result()

    assert (remote["model_version"], local["model_version"]) == (1, 1)
    assert remote["metrics"] == local["metrics"]
    assert (remote["training_rows"], remote["test_rows"]) == (
        local["training_rows"], local["test_rows"])
    assert remote["promotion"]["decision"] == local["promotion"]["decision"]
    mlflow = training_blocks.get_client()
    lineage_tags = ("knot.feature_views", "knot.contract_version", "knot.source_query_hash",
                    "knot.task", "knot.target", "knot.key_columns")
    lineage = [
        {k: mlflow.get_model_version(name, "1").tags.get(k) for k in lineage_tags}
        for name in ("compute-local", "compute-remote")
    ]
    assert lineage[0] == lineage[1] and lineage[0]["knot.key_columns"] == "row_id"

    # The step ran as a child flow run on the GPU pool, shown under the training run.
    (child,) = children_of(server, state.state_details.flow_run_id)
    assert child.work_pool_name == GPU_POOL and child.state.is_completed()
    assert child.parent_task_run_id is not None
    assert server.read_deployment(child.deployment_id).job_variables["env"] == {
        "KNOT_GPU_HOST": GPU_HOST, "CUDA_VISIBLE_DEVICES": "0"}
    # Its MLflow training run is in the team's store, linked to the child flow run.
    tags = mlflow.get_run(mlflow.get_model_version("compute-remote", "1").run_id).data.tags
    assert tags["knot.prefect.flow_run_id"] == str(child.id)
    assert tags["knot.prefect.work_pool"] == GPU_POOL


def test_a_failing_step_fails_the_parent_with_the_childs_error(
    server: Any, gpu_worker: Path
) -> None:
    @flow(name="compute-test-failing-parent")
    def parent() -> None:
        run_step_on(GPU_POOL, "tests.compute.steps:fail_with", "no GPU memory left (42)")

    state = parent(return_state=True)
    assert state.is_failed()
    with pytest.raises(RemoteStepError) as raised:
        state.result()
    assert "no GPU memory left (42)" in str(raised.value)
    assert "ValueError" in str(raised.value)
    (child,) = children_of(server, state.state_details.flow_run_id)
    assert child.state.is_failed() and raised.value.flow_run_id == child.id


def test_cancelling_the_parent_cancels_the_child(
    server: Any, cpu_worker: Path, gpu_worker: Path, tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment
    from prefect.states import Cancelling

    from knot_prefect.deploy import deploy_flow

    deploy_flow(f"{STEPS}:slow_step_parent", pool=CPU_POOL, name="slow-parent")
    marker = tmp_path / "step-started"
    parent = run_deployment(
        "compute-test-slow-step-parent/slow-parent", timeout=0,
        parameters={"pool": GPU_POOL, "storage": STORAGE, "marker": str(marker)},
    )
    wait_for("the step to start on the GPU pool", marker.exists, timeout=600)
    (child,) = children_of(server, parent.id)

    server.set_flow_run_state(parent.id, Cancelling(message="cancelled by the test"))

    def cancelled(flow_run_id: Any) -> Any:
        state = server.read_flow_run(flow_run_id).state
        return state if state.is_cancelled() else None

    wait_for("the parent to be cancelled", lambda: cancelled(parent.id), timeout=240)
    state = wait_for("the child to be cancelled", lambda: cancelled(child.id), timeout=240)
    assert state.is_cancelled()
