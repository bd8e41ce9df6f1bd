"""The final job configuration of every work pool type, built by the real worker classes.

Each test takes the worker's default base job template (or knot's, where knot adds GPU
variables), applies a profile's job variables with the worker's job configuration class
(``from_template_and_values``), prepares it for a flow run as the worker does, and checks
that CPU, memory and GPUs land where the platform reads them. Where the worker goes one
step further before calling its platform (Docker host config, ECS task definition and
run request, Vertex AI job spec), that step runs too, offline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from knot_prefect import ComputeProfile
from knot_prefect.deploy import base_job_template, render_job_configuration

L4 = ComputeProfile(
    cpu=4, memory="16Gi", gpu_count=1, gpu_kind="nvidia-l4",
    image="ghcr.io/acme/train:1", env={"KNOT_HOME": "/data/knot"},
)
TWO_A100 = ComputeProfile(cpu=16, memory="64Gi", gpu_count=2, gpu_kind="nvidia-a100-80gb",
                          image="ghcr.io/acme/train:1")
SMALL_CPU = ComputeProfile(cpu=0.5, memory="1Gi", image="ghcr.io/acme/score:1")
# A Prefect API that is not on loopback, so the Docker worker does not ask a daemon for
# its version to map host.docker.internal.
REMOTE_API = {"PREFECT_API_URL": "https://prefect.example.com/api"}


def build(worker: Any, template: dict[str, Any], variables: dict[str, Any], flow_run: Any) -> Any:
    """What a worker does with a work pool's template and a deployment's variables."""
    configuration = asyncio.run(
        worker.job_configuration.from_template_and_values(template, variables)
    )
    configuration.prepare_for_flow_run(flow_run)
    return configuration


def env_list_to_dict(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in items}


# -- process ------------------------------------------------------------------------------
def test_process_gets_cuda_visible_devices(flow_run: Any) -> None:
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    configuration = build(ProcessWorker, template, TWO_A100.job_variables("process"), flow_run)
    assert configuration.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    cpu_only = build(ProcessWorker, template, SMALL_CPU.job_variables("process"), flow_run)
    assert "CUDA_VISIBLE_DEVICES" not in cpu_only.env


def test_process_keeps_the_profile_env_and_the_pool_env(flow_run: Any) -> None:
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = {"POOL_WIDE": "yes"}
    configuration = build(ProcessWorker, template, L4.job_variables("process"), flow_run)
    assert configuration.env["KNOT_HOME"] == "/data/knot"
    assert configuration.env["POOL_WIDE"] == "yes"
    assert configuration.env["CUDA_VISIBLE_DEVICES"] == "0"


# -- docker -------------------------------------------------------------------------------
def test_docker_host_config_has_gpus_cpu_and_memory(flow_run: Any) -> None:
    import docker
    from docker.models.containers import _create_container_args
    from prefect_docker.worker import DockerWorker

    template = DockerWorker.get_default_base_job_template()
    variables = TWO_A100.job_variables("docker", {"env": REMOTE_API})
    configuration = build(DockerWorker, template, variables, flow_run)
    assert configuration.image == "ghcr.io/acme/train:1"

    # The worker's container settings, turned into Docker API arguments by docker-py.
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.44")
    settings = DockerWorker(work_pool_name="docker-gpu")._build_container_settings(
        client, configuration
    )
    settings["version"] = "1.44"
    host_config = _create_container_args(settings)["host_config"]
    assert host_config["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]],
         "Options": {}}
    ]
    assert host_config["NanoCpus"] == 16_000_000_000
    assert host_config["Memory"] == 64 * 1024**3


def test_docker_without_gpus_has_no_device_requests(flow_run: Any) -> None:
    from prefect_docker.worker import DockerWorker

    template = DockerWorker.get_default_base_job_template()
    configuration = build(DockerWorker, template, SMALL_CPU.job_variables("docker"), flow_run)
    assert configuration.container_create_kwargs == {"nano_cpus": 500_000_000}
    assert configuration.mem_limit == "1024m"


# -- kubernetes ---------------------------------------------------------------------------
def test_kubernetes_gpu_manifest(flow_run: Any) -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    configuration = build(
        KubernetesWorker, base_job_template("kubernetes"), TWO_A100.job_variables("kubernetes"),
        flow_run,
    )
    pod = configuration.job_manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {
        "limits": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"},
        "requests": {"cpu": "16", "memory": "64Gi"},
    }
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["image"] == "ghcr.io/acme/train:1"


def test_kubernetes_cpu_profile_on_knot_template_equals_default_template(flow_run: Any) -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    variables = SMALL_CPU.job_variables("kubernetes")
    with_knot = build(KubernetesWorker, base_job_template("kubernetes"), variables, flow_run)
    with_default = build(
        KubernetesWorker, KubernetesWorker.get_default_base_job_template(), variables, flow_run
    )
    pod = with_knot.job_manifest["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert with_knot.job_manifest == with_default.job_manifest


# -- ecs ----------------------------------------------------------------------------------
def test_ecs_gpu_task_definition_and_run_request(flow_run: Any) -> None:
    from prefect_aws.workers.ecs_worker import ECSWorker

    configuration = build(ECSWorker, base_job_template("ecs"), L4.job_variables("ecs"), flow_run)
    worker = ECSWorker(work_pool_name="ecs-gpu")
    task_definition = worker._prepare_task_definition(configuration, "us-east-1", flow_run)
    container = task_definition["containerDefinitions"][0]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert task_definition["requiresCompatibilities"] == ["EC2"]
    assert (task_definition["cpu"], task_definition["memory"]) == ("4096", "16384")
    assert container["image"] == "ghcr.io/acme/train:1"

    request = worker._prepare_task_run_request(
        configuration, task_definition, "arn:aws:ecs:us-east-1:1:task-definition/x:1", True
    )
    assert request["launchType"] == "EC2"
    assert request["placementConstraints"] == [
        {"type": "memberOf", "expression": r"attribute:ecs.instance-type =~ g6\..*"}
    ]


def test_ecs_gpu_task_definition_registers(moto_s3: str, flow_run: Any) -> None:
    import boto3
    from prefect_aws.workers.ecs_worker import ECSWorker

    configuration = build(
        ECSWorker, base_job_template("ecs"), TWO_A100.job_variables("ecs"), flow_run
    )
    task_definition = ECSWorker(work_pool_name="ecs-gpu")._prepare_task_definition(
        configuration, "us-east-1", flow_run
    )
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=moto_s3)
    registered = ecs.register_task_definition(**task_definition)["taskDefinition"]
    assert registered["containerDefinitions"][0]["resourceRequirements"] == [
        {"type": "GPU", "value": "2"}
    ]
    assert registered["requiresCompatibilities"] == ["EC2"]


def test_ecs_fargate_cpu_profile(flow_run: Any) -> None:
    from prefect_aws.workers.ecs_worker import ECSWorker

    configuration = build(
        ECSWorker, base_job_template("ecs"), SMALL_CPU.job_variables("ecs"), flow_run
    )
    task_definition = ECSWorker(work_pool_name="ecs")._prepare_task_definition(
        configuration, "us-east-1", flow_run
    )
    assert (task_definition["cpu"], task_definition["memory"]) == ("512", "1024")
    assert task_definition["requiresCompatibilities"] == ["FARGATE"]
    assert "resourceRequirements" not in task_definition["containerDefinitions"][0]
    assert configuration.task_run_request["launchType"] == "FARGATE"
    assert "placementConstraints" not in configuration.task_run_request


# -- cloud-run-v2 -------------------------------------------------------------------------
def test_cloud_run_gpu_job_body(google_adc: Any, flow_run: Any) -> None:
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

    configuration = build(
        CloudRunWorkerV2, base_job_template("cloud-run-v2"), L4.job_variables("cloud-run-v2"),
        flow_run,
    )
    task = configuration.job_body["template"]["template"]
    container = task["containers"][0]
    assert container["resources"]["limits"] == {
        "cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"
    }
    assert task["nodeSelector"] == {"accelerator": "nvidia-l4"}
    assert env_list_to_dict(container["env"])["KNOT_HOME"] == "/data/knot"
    assert container["image"] == "ghcr.io/acme/train:1"


def test_cloud_run_cpu_profile_on_default_template(google_adc: Any, flow_run: Any) -> None:
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

    profile = ComputeProfile(cpu=2, memory="4Gi")
    configuration = build(
        CloudRunWorkerV2, CloudRunWorkerV2.get_default_base_job_template(),
        profile.job_variables("cloud-run-v2"), flow_run,
    )
    task = configuration.job_body["template"]["template"]
    assert task["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert "nodeSelector" not in task


# -- vertex-ai ----------------------------------------------------------------------------
def test_vertex_ai_job_spec(google_adc: Any, flow_run: Any) -> None:
    from prefect_gcp.workers.vertex import VertexAIWorker

    variables = TWO_A100.job_variables(
        "vertex-ai", {"region": "us-central1", "service_account_name": "runner@knot.iam"}
    )
    configuration = build(
        VertexAIWorker, VertexAIWorker.get_default_base_job_template(), variables, flow_run
    )
    pool_spec = configuration.job_spec["worker_pool_specs"][0]
    assert pool_spec["machine_spec"] == {
        "machine_type": "a2-ultragpu-2g",
        "accelerator_type": "NVIDIA_A100_80GB",
        "accelerator_count": 2,
    }
    assert pool_spec["container_spec"]["image_uri"] == "ghcr.io/acme/train:1"


def test_vertex_ai_cpu_job_gets_a_machine_that_fits(google_adc: Any, flow_run: Any) -> None:
    from prefect_gcp.workers.vertex import VertexAIWorker

    profile = ComputeProfile(cpu=6, memory="40Gi", image="ghcr.io/acme/score:1")
    variables = profile.job_variables(
        "vertex-ai", {"region": "us-central1", "service_account_name": "runner@knot.iam"}
    )
    configuration = build(
        VertexAIWorker, VertexAIWorker.get_default_base_job_template(), variables, flow_run
    )
    machine = configuration.job_spec["worker_pool_specs"][0]["machine_spec"]
    # n1-standard-8 has 30 GB, n1-highmem-8 52 GB: the smallest with 6 vCPUs and 40 GiB.
    assert machine["machine_type"] == "n1-highmem-8"
    assert "accelerator_type" not in machine or machine["accelerator_type"] is None


# -- knot's own helper --------------------------------------------------------------------
def test_render_job_configuration_matches_the_worker(flow_run: Any) -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    rendered = render_job_configuration("kubernetes", L4, flow_run=flow_run)
    assert isinstance(rendered, KubernetesWorker.job_configuration)
    container = rendered.job_manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
