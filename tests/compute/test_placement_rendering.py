"""MIG slices, spot capacity, node selectors, tolerations and affinity, rendered by the
real worker classes' job configurations, and refused where the pool type has no way
to honour them."""

from __future__ import annotations

from typing import Any

import pytest

from knot_prefect import ComputeProfile
from knot_prefect.compute.errors import ProfileNotSatisfiableError
from knot_prefect.deploy import base_job_template
from tests.deploy.test_job_configurations import build

AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east1-b"]}
    ]}]}}}
MIG = ComputeProfile(gpu_count=2, gpu_kind="nvidia-a100-80gb", mig_profile="1g.10gb",
                     spot=True, affinity=AFFINITY, node_selector={"team": "ml"},
                     image="ghcr.io/acme/train:1")


def test_kubernetes_pod_gets_mig_slices_spot_nodes_and_affinity(flow_run: Any) -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    configuration = build(KubernetesWorker, base_job_template("kubernetes"),
                          MIG.job_variables("kubernetes"), flow_run)
    pod = configuration.job_manifest["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "2"}
    assert pod["nodeSelector"] == {"team": "ml", "cloud.google.com/gke-spot": "true",
                                   "cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
            "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["affinity"] == AFFINITY

    whole = build(KubernetesWorker, base_job_template("kubernetes"),
                  ComputeProfile(gpu_count=1).job_variables("kubernetes"), flow_run)
    limits = whole.job_manifest["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert limits["limits"] == {"nvidia.com/gpu": "1"}  # no MIG key left behind
    assert "affinity" not in whole.job_manifest["spec"]["template"]["spec"]


def test_vertex_ai_spot_scheduling(google_adc: Any, flow_run: Any) -> None:
    from prefect_gcp.workers.vertex import VertexAIWorker

    profile = ComputeProfile(gpu_count=1, gpu_kind="nvidia-l4", spot=True,
                             image="ghcr.io/acme/train:1")
    variables = profile.job_variables(
        "vertex-ai", {"region": "us-central1", "service_account_name": "runner@knot.iam"})
    configuration = build(VertexAIWorker, VertexAIWorker.get_default_base_job_template(),
                          variables, flow_run)
    # The worker passes the strategy's name to aiplatform's Scheduling.Strategy[...].
    assert configuration.job_spec["scheduling"] == {"strategy": "SPOT"}


def test_ecs_spot_runs_on_fargate_spot(flow_run: Any) -> None:
    from prefect_aws.workers.ecs_worker import ECSWorker

    profile = ComputeProfile(cpu=1, memory="2Gi", spot=True, image="ghcr.io/acme/score:1")
    configuration = build(ECSWorker, base_job_template("ecs"), profile.job_variables("ecs"),
                          flow_run)
    assert configuration.task_run_request["launchType"] == "FARGATE_SPOT"
    # A subnet, as a pool's network settings give it: the worker would look one up in AWS.
    configuration.task_run_request["networkConfiguration"] = {
        "awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
    worker = ECSWorker(work_pool_name="ecs")
    task_definition = worker._prepare_task_definition(configuration, "us-east-1", flow_run)
    request = worker._prepare_task_run_request(
        configuration, task_definition, "arn:aws:ecs:us-east-1:1:task-definition/x:1", True)
    assert request["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in request


@pytest.mark.parametrize(("profile", "pool_type", "message"), [
    (ComputeProfile(gpu_count=1, mig_profile="1g.10gb"), "process",
     "MIG slices (nvidia.com/mig-1g.10gb) are Kubernetes resources; a process pool"),
    (ComputeProfile(gpu_count=1, gpu_kind="nvidia-a100-80gb", mig_profile="1g.10gb"),
     "vertex-ai", "MIG slices"),
    (ComputeProfile(spot=True), "docker", "no spot / preemptible capacity"),
    (ComputeProfile(cpu=4, memory="16Gi", gpu_count=1, gpu_kind="nvidia-l4", spot=True),
     "cloud-run-v2", "no spot / preemptible capacity"),
    (ComputeProfile(gpu_count=1, spot=True), "ecs", "EC2 Spot capacity provider"),
    (ComputeProfile(node_selector={"team": "ml"}), "process",
     "node_selector is a Kubernetes scheduling rule"),
    (ComputeProfile(tolerations=[{"key": "a", "operator": "Exists"}], affinity=AFFINITY),
     "ecs", "tolerations, affinity are Kubernetes scheduling rules"),
])
def test_placement_a_pool_type_cannot_honour_is_refused(
    profile: ComputeProfile, pool_type: str, message: str
) -> None:
    with pytest.raises(ProfileNotSatisfiableError, match="To fix it") as raised:
        profile.job_variables(pool_type)
    assert message in str(raised.value)


@pytest.mark.parametrize(("fields", "message"), [
    ({"gpu_count": 1, "gpu_kind": "nvidia-l4", "mig_profile": "1g.10gb"},
     "'nvidia-l4' has no MIG slices"),
    ({"gpu_count": 1, "gpu_kind": "nvidia-tesla-a100", "mig_profile": "1g.20gb"},
     "nvidia-tesla-a100 has no MIG slice '1g.20gb'; it offers 1g.5gb"),
    ({"gpu_count": 0, "mig_profile": "1g.10gb"}, "gpu_count is 0"),
    ({"gpu_count": 1, "mig_profile": "9g.1tb"}, "unknown MIG profile '9g.1tb'"),
])
def test_mig_profiles_are_checked_against_the_gpu_kind(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=r"(?i)mig") as raised:
        ComputeProfile(**fields)
    assert message in str(raised.value)
