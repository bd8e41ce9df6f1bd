"""`prefect deploy --name ...` works, as each README says, for every process-pool
deployment of every recipe (against a real Prefect server), and the churn recipe's
deployment then runs through a real process worker started in the project folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from knot_prefect.recipes import copy_recipe
from tests import services
from tests.recipes.conftest import RECIPES

pytestmark = pytest.mark.heavy

PREFECT = str(Path(sys.executable).parent / "prefect")
KNOT = str(Path(sys.executable).parent / "knot")
# Values the deployments' templates read from the environment.
TEMPLATE_ENV = {"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:8786"}


def process_deployments() -> list[tuple[str, str, str]]:
    found = []
    for folder in sorted(RECIPES.iterdir()):
        if not (folder / "prefect.yaml").is_file():
            continue
        for deployment in yaml.safe_load((folder / "prefect.yaml").read_text())["deployments"]:
            if "image" not in (deployment["work_pool"].get("job_variables") or {}):
                found.append((folder.name, deployment["name"], deployment["work_pool"]["name"]))
    return found


DEPLOYMENTS = process_deployments()


def cli_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API_", "KNOT_HOME", "PYTEST_"))}
    return {**env, **TEMPLATE_ENV, "PREFECT_API_URL": api_url}


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=timeout)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"{' '.join(command)}:\n{output[-4000:]}"
    return output


def test_every_recipe_has_a_process_deployment_to_check() -> None:
    assert {recipe for recipe, _, _ in DEPLOYMENTS} >= {
        "churn-duckdb", "gpu-training", "s3-parquet-dask-scoring"}


@pytest.mark.parametrize(("recipe", "name", "pool"), DEPLOYMENTS,
                         ids=[f"{r}-{n}" for r, n, _ in DEPLOYMENTS])
def test_prefect_deploy_by_name_builds_and_pushes_nothing(
    recipe: str, name: str, pool: str, prefect_server: str, tmp_path: Path
) -> None:
    project = copy_recipe(recipe, tmp_path / recipe)
    env = cli_env(prefect_server)
    subprocess.run([PREFECT, "work-pool", "create", pool, "--type", "process"], cwd=project,
                   env=env, capture_output=True, timeout=120)
    output = run([PREFECT, "--no-prompt", "deploy", "--name", name], project, env)
    assert "build steps" not in output and "push steps" not in output, output[-3000:]
    assert "Deployment '" in output and f"/{name}' successfully created" in output, output


@pytest.mark.timeout(1500)  # set-up, deploy and the whole pipeline in the worker's process
def test_churn_deployment_runs_on_a_process_worker(
    prefect_server: str, tmp_path: Path
) -> None:
    """README, "Deploy it": deploy churn-local, start a worker in the folder, run it."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = copy_recipe("churn-duckdb", tmp_path / "churn")
    env = cli_env(prefect_server)
    run([KNOT, "blocks", "apply", "blocks.yaml"], project, env)
    run([sys.executable, "generate_data.py", "--customers", "300"], project, env)
    run([PREFECT, "work-pool", "create", "local-process", "--type", "process", "--overwrite"],
        project, env)
    run([PREFECT, "--no-prompt", "deploy", "--name", "churn-local"], project, env)

    with temporary_settings({PREFECT_API_URL: prefect_server}), \
            get_client(sync_client=True) as client, \
            services.process_worker(client, prefect_server, "local-process", project) as log:
        flow_run: Any = run_deployment("churn-pipeline/churn-local", timeout=1200,
                                       poll_interval=2)
        log_tail = log.read_text(errors="replace")[-4000:]
    assert flow_run.state is not None
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\nworker log:\n{log_tail}"
    assert flow_run.infrastructure_pid  # a process the worker started
    # The run worked in the project folder: its warehouse and MLflow store are there.
    assert (project / "data" / "warehouse.duckdb").is_file()
    assert (project / ".knot" / "mlflow" / "mlflow.db").is_file()
    assert not (project / "mlflow.db").exists()
