"""flows/prefect.yaml: its entrypoints, pool types and profile renderings, and `prefect deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from knot_prefect import ComputeProfile
from knot_prefect.deploy import POOL_TYPES, base_job_template
from knot_prefect.deploy.templates import missing_variables
from tests.deployments.conftest import FLOWS_DIR, load_prefect_yaml

CONFIG = load_prefect_yaml()
DEPLOYMENTS: list[dict[str, Any]] = CONFIG["deployments"]
POOLS: dict[str, str] = CONFIG["definitions"]["work_pools"]
PROFILES: dict[str, dict[str, Any]] = CONFIG["definitions"]["profiles"]
CONTAINER_IMAGE_DIR = "/opt/prefect/flows"


def profile_of(deployment: dict[str, Any]) -> str:
    names = [t.split(":", 1)[1] for t in deployment.get("tags", []) if t.startswith("profile:")]
    assert len(names) == 1, f"{deployment['name']}: tag exactly one 'profile:NAME'"
    return names[0]


def test_every_pool_type_is_one_knot_renders_and_each_appears() -> None:
    assert set(POOLS.values()) <= set(POOL_TYPES)
    used = {POOLS[d["work_pool"]["name"]] for d in DEPLOYMENTS}
    assert used == {"process", "docker", "kubernetes", "ecs", "vertex-ai", "cloud-run-v2"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_imports_and_names_a_flow(deployment: dict[str, Any]) -> None:
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    path, _, function = deployment["entrypoint"].partition(":")
    assert (FLOWS_DIR / path).is_file()
    flow = load_flow_from_entrypoint(f"{FLOWS_DIR / path}:{function}")
    assert isinstance(flow, Flow)
    assert flow.name.startswith("knot-")


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_job_variables_are_the_profile_rendered_for_the_pool_type(
    deployment: dict[str, Any],
) -> None:
    pool_type = POOLS[deployment["work_pool"]["name"]]
    profile = ComputeProfile(**PROFILES[profile_of(deployment)])
    written = deployment["work_pool"]["job_variables"]
    assert written == profile.job_variables(pool_type)
    # knot's base job template of the pool type has a variable for every one of them.
    assert missing_variables(base_job_template(pool_type, gpu=True), written) == []


def test_container_deployments_pull_from_the_image_folder() -> None:
    for deployment in DEPLOYMENTS:
        image = deployment["work_pool"]["job_variables"].get("image")
        if image:
            assert deployment["pull"] == [{
                "prefect.deployments.steps.set_working_directory": {
                    "directory": CONTAINER_IMAGE_DIR
                }
            }], deployment["name"]
        else:
            assert "pull" not in deployment, deployment["name"]
    dockerfile = (FLOWS_DIR / "Dockerfile").read_text()
    assert f"COPY . {CONTAINER_IMAGE_DIR}" in dockerfile


@pytest.mark.heavy
def test_prefect_deploy_all_creates_every_deployment(real_server: Any, prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=FLOWS_DIR, env=env, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    for spec in DEPLOYMENTS:
        flow_name = spec["entrypoint"].split(":")[1].removesuffix("_flow")
        flow_name = "knot-" + flow_name.replace("_", "-")
        deployment = real_server.read_deployment_by_name(f"{flow_name}/{spec['name']}")
        assert deployment.work_pool_name == spec["work_pool"]["name"]
        assert deployment.job_variables == spec["work_pool"]["job_variables"]
        assert deployment.entrypoint == spec["entrypoint"]
        assert deployment.tags == spec["tags"]
        expected_dir = (
            CONTAINER_IMAGE_DIR if "image" in spec["work_pool"]["job_variables"]
            else str(FLOWS_DIR)
        )
        assert deployment.pull_steps == [{
            "prefect.deployments.steps.set_working_directory": {"directory": expected_dir}
        }]
        crons = [s.schedule.cron for s in deployment.schedules]
        assert crons == [s["cron"] for s in spec.get("schedules", [])]
