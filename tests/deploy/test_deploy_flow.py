"""deploy_flow and the ``knot deploy`` / ``knot pool template`` commands on a real server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from knot_prefect import ComputeProfile
from knot_prefect.cli import pool as pool_commands
from knot_prefect.cli.deploy import deploy as deploy_command
from knot_prefect.deploy import (
    ProfileNotSatisfiableError,
    WorkPoolTemplateError,
    base_job_template,
    deploy_flow,
)
from knot_prefect.errors import ConfigurationError

TINY_FLOW = Path(__file__).with_name("tiny_flow.py")
ENTRYPOINT = f"{TINY_FLOW}:tiny"

POOLS: dict[str, tuple[str, bool]] = {
    # name: (type, with knot's GPU variables)
    "knot-process": ("process", False),
    "k8s-default": ("kubernetes", False),
    "k8s-gpu": ("kubernetes", True),
    "ecs-gpu": ("ecs", True),
    "cloud-run-gpu": ("cloud-run-v2", True),
}


@pytest.fixture(scope="module")
def server(prefect_server: str) -> Iterator[Any]:
    """The real Prefect server, with work pools created from knot's templates."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: prefect_server}),
        get_client(sync_client=True) as client,
    ):
        for name, (pool_type, gpu) in POOLS.items():
            # The server validates every template: placeholders need variables.
            template = base_job_template(pool_type, gpu=gpu)
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_work_pool(
                    WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
                )
        ComputeProfile(gpu_count=2, env={"KNOT_ENV": "ci"}).save("two-gpus", overwrite=True)
        ComputeProfile(cpu=4, memory="16Gi", gpu_count=1, gpu_kind="nvidia-l4",
                       image="ghcr.io/acme/train:1").save("l4", overwrite=True)
        yield client


def test_deploy_a_flow_file_to_a_process_pool(server: Any) -> None:
    deployment_id = deploy_flow(
        ENTRYPOINT, pool="knot-process", profile="two-gpus", schedule="0 6 * * *",
        parameters={"rows": 5},
    )
    deployment = server.read_deployment(deployment_id)
    assert deployment.name == "knot-process"
    assert deployment.work_pool_name == "knot-process"
    assert deployment.job_variables == {"env": {"KNOT_ENV": "ci", "CUDA_VISIBLE_DEVICES": "0,1"}}
    assert deployment.entrypoint == "tiny_flow.py:tiny"
    assert deployment.pull_steps == [{
        "prefect.deployments.steps.set_working_directory": {"directory": str(TINY_FLOW.parent)}
    }]
    assert deployment.parameters == {"rows": 5}
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * *"]
    assert server.read_flow(deployment.flow_id).name == "knot-tiny"


def test_deploy_a_registered_template_by_module_path(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knot_prefect._registry import FLOW_EXPORTS

    monkeypatch.setitem(FLOW_EXPORTS, "tiny", "tests.deploy.tiny_flow")
    deployment_id = deploy_flow("tiny", pool="knot-process", name="template")
    deployment = server.read_deployment(deployment_id)
    assert deployment.entrypoint == "tests.deploy.tiny_flow.tiny"
    assert deployment.job_variables == {}


def test_gpu_profile_on_a_kubernetes_pool_with_knot_template(server: Any) -> None:
    deployment_id = deploy_flow(ENTRYPOINT, pool="k8s-gpu", profile="l4")
    variables = server.read_deployment(deployment_id).job_variables
    assert variables["gpu_limit"] == "1"
    assert variables["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert variables["image"] == "ghcr.io/acme/train:1"


def test_gpu_profile_on_a_cloud_run_pool_with_knot_template(server: Any) -> None:
    deployment_id = deploy_flow(ENTRYPOINT, pool="cloud-run-gpu", profile="l4")
    variables = server.read_deployment(deployment_id).job_variables
    assert variables["gpu_limit"] == "1"
    assert variables["node_selector"] == {"accelerator": "nvidia-l4"}
    assert (variables["cpu"], variables["memory"]) == ("4", "16Gi")


def test_gpu_profile_on_a_pool_with_the_default_template_is_refused(server: Any) -> None:
    before = len(server.read_deployments())
    with pytest.raises(WorkPoolTemplateError) as caught:
        deploy_flow(ENTRYPOINT, pool="k8s-default", profile="l4")
    message = str(caught.value)
    assert "'gpu_limit'" in message and "'node_selector'" in message
    assert "knot pool template --type kubernetes --gpu" in message
    assert "prefect work-pool update k8s-default" in message
    assert len(server.read_deployments()) == before


def test_gpu_on_fargate_fails_at_deploy_time(server: Any) -> None:
    before = len(server.read_deployments())
    with pytest.raises(ProfileNotSatisfiableError, match=r"Compute profile 'l4'.*Fargate"):
        deploy_flow(ENTRYPOINT, pool="ecs-gpu", profile="l4",
                    job_variables={"launch_type": "FARGATE"})
    assert len(server.read_deployments()) == before
    deployment_id = deploy_flow(ENTRYPOINT, pool="ecs-gpu", profile="l4")
    variables = server.read_deployment(deployment_id).job_variables
    assert variables["launch_type"] == "EC2"
    assert variables["resource_requirements"] == [{"type": "GPU", "value": "1"}]


def test_missing_pool_profile_or_flow(server: Any) -> None:
    with pytest.raises(ConfigurationError, match="Work pool 'nowhere' does not exist"):
        deploy_flow(ENTRYPOINT, pool="nowhere")
    with pytest.raises(ConfigurationError, match="Compute profile 'nothing' could not be"):
        deploy_flow(ENTRYPOINT, pool="knot-process", profile="nothing")
    with pytest.raises(ConfigurationError, match=r"neither 'path/to/file\.py:function'"):
        deploy_flow("training", pool="knot-process")
    with pytest.raises(ConfigurationError, match="does not exist"):
        deploy_flow("missing/file.py:train", pool="knot-process")


# -- CLI ----------------------------------------------------------------------------------
def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(deploy_command)
    app.add_typer(pool_commands.app, name="pool")
    return app


def test_knot_deploy_command(server: Any) -> None:
    result = CliRunner().invoke(cli_app(), [
        "deploy", ENTRYPOINT, "--pool", "knot-process", "--profile", "two-gpus",
        "--schedule", "30 2 * * 1", "--name", "nightly", "--param", "rows=7",
    ])
    assert result.exit_code == 0, result.output
    assert "deployed knot-tiny/nightly" in result.output
    deployment = server.read_deployment_by_name("knot-tiny/nightly")
    assert deployment.parameters == {"rows": 7}
    assert deployment.job_variables["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert [s.schedule.cron for s in deployment.schedules] == ["30 2 * * 1"]


def test_knot_deploy_command_reports_unsatisfiable_profiles(server: Any) -> None:
    result = CliRunner().invoke(cli_app(), [
        "deploy", ENTRYPOINT, "--pool", "k8s-default", "--profile", "l4",
    ])
    assert result.exit_code == 1
    assert "knot pool template --type kubernetes --gpu" in result.output


def test_knot_pool_template_command() -> None:
    result = CliRunner().invoke(cli_app(), ["pool", "template", "--type", "kubernetes", "--gpu"])
    assert result.exit_code == 0, result.output
    template = json.loads(result.output)
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_limit }}"
    assert pod["nodeSelector"] == "{{ node_selector }}"
    assert {"gpu_limit", "node_selector", "tolerations"} <= set(
        template["variables"]["properties"]
    )
    bad = CliRunner().invoke(cli_app(), ["pool", "template", "--type", "nomad"])
    assert bad.exit_code == 1
    assert "supported types are" in bad.output
