"""A deployment of training_flow from flows/ runs end to end on a real process worker.

The real Prefect server holds the demo's block documents; a `prefect worker start`
subprocess picks the run up and runs flows/training.py in a child process whose only
way to find the knot home folder is the deployment's job variables (the profile's env).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from knot_prefect import ComputeProfile
from knot_prefect.deploy import deploy_flow
from tests import services
from tests.deployments.conftest import FLOWS_DIR

pytestmark = pytest.mark.heavy

POOL = "e2e-process-pool"
CUSTOMERS = 300
MODEL = "churn-deployed"


@pytest.fixture(scope="module")
def demo_home(real_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A knot home prepared for the demo; its block documents live in the real server."""
    from knot_prefect.demo.seed import prepare_demo
    from knot_prefect.tasks import feast_apply

    home = tmp_path_factory.mktemp("deployed-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        prepare_demo(customers=CUSTOMERS, days=20, seed=3)
        # training reads historical features only: the registry is enough, no materialize
        feast_apply.fn("local-features")
        yield home


@pytest.fixture(scope="module")
def worker(real_server: Any, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Path]:
    """A real `prefect worker start` process serving a process work pool."""
    folder = tmp_path_factory.mktemp("worker")
    with services.process_worker(real_server, prefect_server, POOL, folder) as log:
        yield log


def test_training_deployment_runs_on_a_process_worker(
    real_server: Any, demo_home: Path, worker: Path
) -> None:
    from prefect.deployments import run_deployment

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.demo.params import training_parameters

    profile = ComputeProfile(gpu_count=1, env={"KNOT_HOME": str(demo_home)})
    deployment_id = deploy_flow(
        f"{FLOWS_DIR / 'training.py'}:training_flow", pool=POOL, profile=profile,
        name="e2e-training", parameters=training_parameters(model_name=MODEL),
    )
    deployment = real_server.read_deployment(deployment_id)
    assert deployment.job_variables == {
        "env": {"KNOT_HOME": str(demo_home), "CUDA_VISIBLE_DEVICES": "0"}
    }
    assert deployment.entrypoint == "training.py:training_flow"

    flow_run = run_deployment(
        "knot-training/e2e-training", timeout=420, poll_interval=2,
    )
    log_tail = worker.read_text(errors="replace")[-4000:]
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\nworker log:\n{log_tail}"
    assert flow_run.work_pool_name == POOL
    assert flow_run.infrastructure_pid  # a process the worker started
    assert str(flow_run.id) in worker.read_text(errors="replace")

    # The run trained, registered and promoted the model in the knot home's MLflow.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(demo_home))
        client = MLflowTracking.load("local-mlflow").get_client()
        champion = client.get_model_version_by_alias(MODEL, "champion")
    assert int(champion.version) == 1
    assert champion.tags["knot.feature_views"].startswith("customer_activity@")
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    # ...and MLflow points back at the Prefect run that trained it.
    assert run.data.tags["knot.prefect.flow_run_id"] == str(flow_run.id)
