"""The ``ComputeProfile`` block: the CPU, memory, GPUs, image and environment a flow needs.

One profile deploys the same flow to any work pool type: :meth:`ComputeProfile.job_variables`
renders it as that pool type's job variables (see :mod:`knot_prefect.compute.job_variables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.compute.gpus import (
    ALL_MIG_PROFILES,
    GKE_ACCELERATOR_LABEL,
    GPU_KINDS,
    MIG_PROFILES,
    gpu_kind,
)
from knot_prefect.compute.quantities import parse_memory


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# The same rules as the validators below, as JSON schema patterns, so the Prefect UI
# refuses what loading the block would (JavaScript reads them too: no inline flags).
MEMORY_PATTERN = r"^\s*(?:[1-9][0-9]*(?:Mi|Gi)\s*)?$"
GPU_KIND_PATTERN = (
    r"^\s*(?:(?:" + "|".join(_any_case(name) for name in GPU_KINDS) + r")\s*)?$"
)


class ComputeProfile(KnotBlock):
    """The compute a flow run needs, portable across work pool types.

    CPU is a number of vCPUs; memory a whole number with a ``Mi`` or ``Gi`` suffix;
    GPUs a count and one kind from knot's GPU table (``docs/deploy.md``).

    Examples:
        >>> from knot_prefect.blocks.compute_profile import ComputeProfile
        >>> profile = ComputeProfile(cpu=8, memory="32Gi", gpu_count=1, gpu_kind="nvidia-l4")
        >>> profile.job_variables("vertex-ai")["accelerator_type"]
        'NVIDIA_L4'
        >>> profile.job_variables("ecs")["launch_type"]
        'EC2'
    """

    _block_type_name = "Compute Profile"
    _description = (
        "CPU, memory, GPUs, image and environment for a flow run, rendered as job "
        "variables for process, docker, kubernetes, ecs, cloud-run-v2 and vertex-ai "
        "work pools."
    )
    _code_example = """
```python
from knot_prefect import ComputeProfile
from knot_prefect.deploy import deploy_flow

profile = ComputeProfile.load("BLOCK_NAME")
print(profile.job_variables("kubernetes"))
deploy_flow("flows/train.py:train", pool="gpu-pool", profile=profile)
```
"""

    cpu: float | None = Field(default=None, gt=0)
    """Number of vCPUs for the flow run, e.g. 0.5 or 4; empty for the pool's default."""
    memory: str | None = Field(default=None, json_schema_extra={"pattern": MEMORY_PATTERN})
    """Memory for the flow run as a whole number with a Mi or Gi suffix, e.g. 512Mi or 8Gi; empty
    for the pool's default."""
    gpu_count: int = Field(default=0, ge=0)
    """Number of GPUs for the flow run; 0 for none."""
    gpu_kind: str | None = Field(default=None, json_schema_extra={"pattern": GPU_KIND_PATTERN})
    """GPU model in knot's naming, e.g. nvidia-tesla-t4, nvidia-l4 or nvidia-a100-80gb; required
    by vertex-ai and cloud-run-v2 pools."""
    image: str | None = None
    """Container image for docker, kubernetes, ecs, cloud-run-v2 and vertex-ai pools."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables set for the flow run."""
    machine_type: str | None = None
    """Vertex AI machine type, e.g. a2-highgpu-1g; empty to pick the smallest one that fits cpu,
    memory and GPUs."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Extra Kubernetes node labels the flow run's pod must match."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Extra Kubernetes tolerations for the pod; GPU pods also tolerate the nvidia.com/gpu taint."""
    gpu_node_label: str = GKE_ACCELERATOR_LABEL
    """Kubernetes node label that carries the GPU kind; empty to select GPU nodes only through
    node_selector."""

    mig_profile: str | None = None
    """MIG slice each of gpu_count asks for instead of a whole GPU, e.g. 1g.10gb (Kubernetes
    resource nvidia.com/mig-1g.10gb); kubernetes pools only."""
    spot: bool = False
    """Run on spot / preemptible capacity: GKE Spot nodes on kubernetes, SPOT scheduling on
    vertex-ai, FARGATE_SPOT on ecs (without GPUs)."""
    affinity: dict[str, Any] = Field(default_factory=dict)
    """Kubernetes pod affinity, e.g. {'nodeAffinity': {...}}; kubernetes only."""

    @field_validator("memory")
    @classmethod
    def _check_memory(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_memory(value)
        return value.strip()

    @field_validator("gpu_kind")
    @classmethod
    def _check_gpu_kind(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        names = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        if len(names) > 1:
            raise ValueError(
                f"gpu_kind names {len(names)} GPU kinds ({', '.join(names)}); a flow run "
                "gets one GPU kind. Make one compute profile per GPU kind."
            )
        if names[0].lower() not in GPU_KINDS:
            raise ValueError(
                f"unknown GPU kind {names[0]!r}; use one of {', '.join(GPU_KINDS)}."
            )
        return gpu_kind(names[0]).name

    @field_validator("mig_profile")
    @classmethod
    def _check_mig_profile(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower().removeprefix("nvidia.com/mig-")
        if value not in ALL_MIG_PROFILES:
            raise ValueError(
                f"unknown MIG profile {value!r}; use one of {', '.join(ALL_MIG_PROFILES)}."
            )
        return value

    @model_validator(mode="after")
    def _check_gpus(self) -> ComputeProfile:
        if self.gpu_kind and not self.gpu_count:
            raise ValueError(
                f"gpu_kind is {self.gpu_kind!r} but gpu_count is 0; set gpu_count to 1 or "
                "more, or clear gpu_kind."
            )
        if self.mig_profile:
            if not self.gpu_count:
                raise ValueError(
                    f"mig_profile is {self.mig_profile!r} but gpu_count is 0; set gpu_count "
                    "to the number of MIG slices."
                )
            offered = MIG_PROFILES.get(self.gpu_kind or "")
            if self.gpu_kind and offered is None:
                raise ValueError(
                    f"GPU kind {self.gpu_kind!r} has no MIG slices; MIG runs on "
                    f"{', '.join(MIG_PROFILES)}."
                )
            if offered is not None and self.mig_profile not in offered:
                raise ValueError(
                    f"{self.gpu_kind} has no MIG slice {self.mig_profile!r}; it offers "
                    f"{', '.join(offered)}."
                )
        return self

    @property
    def display_name(self) -> str:
        """The block document name when saved or loaded, else a description for errors."""
        name = getattr(self, "_block_document_name", None)
        return str(name) if name else "unsaved ComputeProfile"

    def job_variables(
        self, pool_type: str, job_variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Render this profile as the job variables of a work pool type.

        Args:
            pool_type: ``process``, ``docker``, ``kubernetes``, ``ecs``,
                ``cloud-run-v2`` or ``vertex-ai``.
            job_variables: Other job variables of the deployment; merged in, and any
                that contradict the profile raise an error.

        Returns:
            The job variables to deploy with.

        Raises:
            knot_prefect.compute.errors.ProfileNotSatisfiableError: The pool type cannot
                satisfy this profile; the message names the profile, the pool type and
                what to change.
        """
        from knot_prefect.compute.job_variables import render_job_variables

        return render_job_variables(self, pool_type, job_variables)

    def check_connection(self) -> str:
        """Render the profile for every pool type and report where it can run.

        Returns:
            The pool types that can satisfy the profile, and why the others cannot.
        """
        from knot_prefect.compute.errors import ProfileNotSatisfiableError
        from knot_prefect.compute.job_variables import POOL_TYPES, render_job_variables

        fits: list[str] = []
        misses: list[str] = []
        for pool_type in POOL_TYPES:
            try:
                render_job_variables(self, pool_type)
            except ProfileNotSatisfiableError as exc:
                misses.append(f"{pool_type} ({exc.problem.rstrip('.')})")
            else:
                fits.append(pool_type)
        detail = f"runs on {', '.join(fits) or 'no pool type'}"
        return f"{detail}; not on {'; '.join(misses)}" if misses else detail
