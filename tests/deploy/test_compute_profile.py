"""ComputeProfile: validation, and requests a work pool type cannot satisfy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from knot_prefect import ComputeProfile
from knot_prefect.compute.gpus import GPU_KINDS
from knot_prefect.deploy import POOL_TYPES, ProfileNotSatisfiableError
from knot_prefect.errors import ConfigurationError


# -- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("memory", ["8GB", "8g", "1.5Gi", "0Mi", "Gi", "8 Gi", "-1Gi"])
def test_memory_outside_the_convention_is_refused(memory: str) -> None:
    with pytest.raises(ValidationError, match="'512Mi' or '8Gi'"):
        ComputeProfile(memory=memory)


def test_two_gpu_kinds_in_one_profile_are_refused() -> None:
    with pytest.raises(ValidationError, match="one GPU kind") as caught:
        ComputeProfile(gpu_count=2, gpu_kind="nvidia-tesla-t4, nvidia-l4")
    assert "Make one compute profile per GPU kind" in str(caught.value)


def test_unknown_gpu_kind_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown GPU kind 'tesla-t4'") as caught:
        ComputeProfile(gpu_count=1, gpu_kind="tesla-t4")
    assert "nvidia-tesla-t4" in str(caught.value)


def test_gpu_kind_without_gpu_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="gpu_count is 0"):
        ComputeProfile(gpu_kind="nvidia-l4")


def test_gpu_kind_is_normalized() -> None:
    assert ComputeProfile(gpu_count=1, gpu_kind=" NVIDIA-L4 ").gpu_kind == "nvidia-l4"


def test_every_gpu_kind_is_offered_somewhere() -> None:
    for kind in GPU_KINDS.values():
        assert kind.kubernetes_label or kind.ecs_instance_family, kind.name


# -- requests a pool type cannot satisfy --------------------------------------------------
def saved(profile: ComputeProfile, name: str) -> ComputeProfile:
    """The profile as loaded from a block document called ``name``."""
    profile.save(name, overwrite=True)
    return ComputeProfile.load(name)


def test_gpu_on_fargate_names_profile_pool_type_and_fix() -> None:
    profile = saved(ComputeProfile(gpu_count=1, gpu_kind="nvidia-tesla-t4"), "t4-train")
    with pytest.raises(ProfileNotSatisfiableError) as caught:
        profile.job_variables("ecs", {"launch_type": "FARGATE"})
    message = str(caught.value)
    assert "Compute profile 't4-train'" in message
    assert "'ecs' work pool" in message
    assert "Fargate has no GPUs" in message
    assert "remove launch_type" in message


def test_gpu_on_fargate_capacity_provider_of_the_pool_is_refused() -> None:
    from knot_prefect.deploy import render_job_variables

    profile = ComputeProfile(gpu_count=1)
    # A capacity provider strategy wins over any launch type, so EC2 cannot be forced.
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    with pytest.raises(ProfileNotSatisfiableError, match="Fargate has no GPUs"):
        render_job_variables(profile, "ecs", pool_defaults={"capacity_provider_strategy": strategy})


def test_gpu_on_ecs_overrides_the_pools_default_fargate_launch_type() -> None:
    from knot_prefect.deploy import render_job_variables

    variables = render_job_variables(
        ComputeProfile(gpu_count=1), "ecs", pool_defaults={"launch_type": "FARGATE"}
    )
    assert variables["launch_type"] == "EC2"
    assert "placement_constraints" not in variables  # no kind: any GPU instance


def test_fargate_size_is_checked_without_gpus() -> None:
    profile = ComputeProfile(cpu=1, memory="1Gi")
    with pytest.raises(ProfileNotSatisfiableError, match="2048-8192 MiB"):
        profile.job_variables("ecs")
    # The same size is fine on the EC2 launch type.
    assert profile.job_variables("ecs", {"launch_type": "EC2"})["memory"] == 1024


def test_two_gpu_kinds_between_profile_and_job_variables() -> None:
    profile = ComputeProfile(gpu_count=1, gpu_kind="nvidia-l4")
    node_selector = {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    with pytest.raises(ProfileNotSatisfiableError, match="one GPU kind") as caught:
        profile.job_variables("kubernetes", {"node_selector": node_selector})
    assert "'nvidia-tesla-t4'" in str(caught.value)
    with pytest.raises(ProfileNotSatisfiableError, match="one GPU kind"):
        profile.job_variables("vertex-ai", {"accelerator_type": "NVIDIA_TESLA_T4"})
    own = ComputeProfile(gpu_count=1, gpu_kind="nvidia-l4", node_selector=node_selector)
    with pytest.raises(ProfileNotSatisfiableError, match="in its node_selector is 'nvidia-tesla"):
        own.job_variables("kubernetes")


@pytest.mark.parametrize("pool_type", ["vertex-ai", "cloud-run-v2"])
def test_gpu_count_without_kind_where_the_platform_needs_it(pool_type: str) -> None:
    with pytest.raises(ProfileNotSatisfiableError, match="set gpu_kind to one of") as caught:
        ComputeProfile(cpu=4, memory="16Gi", gpu_count=1).job_variables(pool_type)
    assert f"'{pool_type}' work pool" in str(caught.value)


@pytest.mark.parametrize("pool_type", ["process", "docker", "kubernetes", "ecs"])
def test_gpu_count_without_kind_where_any_gpu_will_do(pool_type: str) -> None:
    assert ComputeProfile(gpu_count=1).job_variables(pool_type)


def test_cloud_run_gpu_rules() -> None:
    with pytest.raises(ProfileNotSatisfiableError, match="does not offer GPU kind"):
        ComputeProfile(cpu=4, memory="16Gi", gpu_count=1,
                       gpu_kind="nvidia-tesla-t4").job_variables("cloud-run-v2")
    with pytest.raises(ProfileNotSatisfiableError, match="one GPU, not 2"):
        ComputeProfile(cpu=4, memory="16Gi", gpu_count=2,
                       gpu_kind="nvidia-l4").job_variables("cloud-run-v2")
    with pytest.raises(ProfileNotSatisfiableError, match="at least 4 vCPUs and 16Gi"):
        ComputeProfile(cpu=2, memory="8Gi", gpu_count=1,
                       gpu_kind="nvidia-l4").job_variables("cloud-run-v2")
    with pytest.raises(ProfileNotSatisfiableError, match="at most 8 vCPUs"):
        ComputeProfile(cpu=16).job_variables("cloud-run-v2")


def test_aws_only_gpu_kinds_on_google_platforms() -> None:
    profile = ComputeProfile(gpu_count=1, gpu_kind="nvidia-a10g")
    assert profile.job_variables("ecs")["placement_constraints"][0]["expression"].endswith(
        r"g5\..*"
    )
    with pytest.raises(ProfileNotSatisfiableError, match="does not offer GPU kind"):
        profile.job_variables("vertex-ai")
    with pytest.raises(ProfileNotSatisfiableError, match="GKE has no node label"):
        profile.job_variables("kubernetes")
    # Without the GKE label the pod is placed through the profile's own node selector.
    generic = ComputeProfile(gpu_count=1, gpu_kind="nvidia-a10g", gpu_node_label="",
                             node_selector={"node.kubernetes.io/instance-type": "g5.xlarge"})
    assert generic.job_variables("kubernetes")["node_selector"] == {
        "node.kubernetes.io/instance-type": "g5.xlarge"
    }


def test_vertex_machine_too_small_for_the_request() -> None:
    profile = ComputeProfile(cpu=64, gpu_count=1, gpu_kind="nvidia-l4")
    with pytest.raises(ProfileNotSatisfiableError, match="largest is g2-standard-32") as caught:
        profile.job_variables("vertex-ai")
    assert "set machine_type" in str(caught.value)
    explicit = ComputeProfile(cpu=64, gpu_count=1, gpu_kind="nvidia-l4",
                              machine_type="g2-custom-64")
    assert explicit.job_variables("vertex-ai")["machine_type"] == "g2-custom-64"


def test_conflicting_job_variables_are_not_silently_dropped() -> None:
    profile = ComputeProfile(cpu=2, env={"MODE": "train"})
    with pytest.raises(ProfileNotSatisfiableError, match="'cpu_limit' is '4'"):
        profile.job_variables("kubernetes", {"cpu_limit": "4"})
    with pytest.raises(ProfileNotSatisfiableError, match=r"'env\.MODE'"):
        profile.job_variables("kubernetes", {"env": {"MODE": "score"}})
    merged = profile.job_variables("kubernetes", {"env": {"OTHER": "1"}, "namespace": "ml"})
    assert merged["env"] == {"OTHER": "1", "MODE": "train"}
    assert merged["namespace"] == "ml"


def test_process_cuda_visible_devices_must_match_gpu_count() -> None:
    with pytest.raises(ProfileNotSatisfiableError, match="CUDA_VISIBLE_DEVICES='3'"):
        ComputeProfile(gpu_count=2, env={"CUDA_VISIBLE_DEVICES": "3"}).job_variables("process")
    pinned = ComputeProfile(gpu_count=1, env={"CUDA_VISIBLE_DEVICES": "3"})
    assert pinned.job_variables("process")["env"] == {"CUDA_VISIBLE_DEVICES": "3"}


def test_docker_merges_the_deployments_container_kwargs() -> None:
    variables = ComputeProfile(gpu_count=1).job_variables(
        "docker", {"container_create_kwargs": {"shm_size": "8g"}}
    )
    assert variables["container_create_kwargs"]["shm_size"] == "8g"
    assert variables["container_create_kwargs"]["device_requests"][0]["count"] == 1


def test_unknown_pool_type() -> None:
    with pytest.raises(ConfigurationError, match="supported types are process, docker"):
        ComputeProfile().job_variables("nomad")


def test_push_pools_use_their_workers_variables() -> None:
    profile = ComputeProfile(gpu_count=1, gpu_kind="nvidia-tesla-t4")
    assert profile.job_variables("vertex-ai:push") == profile.job_variables("vertex-ai")


def test_check_connection_reports_where_the_profile_runs() -> None:
    detail = ComputeProfile(gpu_count=1, gpu_kind="nvidia-tesla-t4").check_connection()
    assert detail.startswith("runs on process, docker, kubernetes, ecs, vertex-ai")
    assert "not on cloud-run-v2" in detail
    assert ComputeProfile().check_connection() == f"runs on {', '.join(POOL_TYPES)}"
