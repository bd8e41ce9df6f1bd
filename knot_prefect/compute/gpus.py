"""The GPU kinds a compute profile may ask for, and what each platform calls them.

knot names a GPU kind the way GKE labels its nodes (``cloud.google.com/gke-accelerator``),
e.g. ``nvidia-tesla-t4``. Each platform has its own name, or none when it does not offer
that GPU: Vertex AI's ``accelerator_type`` enum, the ECS (EC2) instance family whose
instances carry it, and Cloud Run's ``accelerator`` node selector.

Examples:
    >>> from knot_prefect.compute.gpus import gpu_kind
    >>> t4 = gpu_kind("nvidia-tesla-t4")
    >>> t4.vertex_accelerator, t4.ecs_instance_family
    ('NVIDIA_TESLA_T4', 'g4dn')
    >>> gpu_kind("nvidia-l4").cloud_run_accelerator
    'nvidia-l4'
"""

from __future__ import annotations

from dataclasses import dataclass

from knot_prefect.errors import ConfigurationError

# The node label GKE sets on GPU nodes; knot's kubernetes node selector uses it by default.
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"


@dataclass(frozen=True)
class GpuKind:
    """One GPU model and its name on each platform (``None``: not offered there).

    Attributes:
        name: knot's name, the GKE node label value where GKE offers it.
        description: The GPU model in words.
        kubernetes_label: Value of ``cloud.google.com/gke-accelerator`` on nodes with it.
        vertex_accelerator: Vertex AI ``MachineSpec.accelerator_type``.
        ecs_instance_family: EC2 instance family with this GPU (ECS on EC2).
        ecs_instance_pattern: Java regular expression matching those instance types,
            used in the ECS placement constraint ``attribute:ecs.instance-type =~ ...``.
        cloud_run_accelerator: Cloud Run ``nodeSelector.accelerator`` value.
    """

    name: str
    description: str
    kubernetes_label: str | None
    vertex_accelerator: str | None
    ecs_instance_family: str | None
    ecs_instance_pattern: str | None
    cloud_run_accelerator: str | None


def _kind(
    name: str,
    description: str,
    *,
    gke: bool = True,
    vertex: str | None = None,
    ecs: tuple[str, str] | None = None,
    cloud_run: bool = False,
) -> GpuKind:
    family, pattern = ecs if ecs else (None, None)
    return GpuKind(
        name=name,
        description=description,
        kubernetes_label=name if gke else None,
        vertex_accelerator=vertex,
        ecs_instance_family=family,
        ecs_instance_pattern=pattern,
        cloud_run_accelerator=name if cloud_run else None,
    )


GPU_KINDS: dict[str, GpuKind] = {
    kind.name: kind
    for kind in (
        _kind("nvidia-tesla-t4", "NVIDIA T4 16 GB", vertex="NVIDIA_TESLA_T4",
              ecs=("g4dn", r"g4dn\..*")),
        _kind("nvidia-tesla-v100", "NVIDIA V100 16 GB", vertex="NVIDIA_TESLA_V100",
              ecs=("p3", r"p3(dn)?\..*")),
        _kind("nvidia-tesla-p100", "NVIDIA P100 16 GB", vertex="NVIDIA_TESLA_P100"),
        _kind("nvidia-tesla-p4", "NVIDIA P4 8 GB", vertex="NVIDIA_TESLA_P4"),
        _kind("nvidia-tesla-a100", "NVIDIA A100 40 GB", vertex="NVIDIA_TESLA_A100",
              ecs=("p4d", r"p4d\..*")),
        _kind("nvidia-a100-80gb", "NVIDIA A100 80 GB", vertex="NVIDIA_A100_80GB",
              ecs=("p4de", r"p4de\..*")),
        _kind("nvidia-l4", "NVIDIA L4 24 GB", vertex="NVIDIA_L4", ecs=("g6", r"g6\..*"),
              cloud_run=True),
        _kind("nvidia-h100-80gb", "NVIDIA H100 80 GB", vertex="NVIDIA_H100_80GB",
              ecs=("p5", r"p5\..*")),
        _kind("nvidia-h200-141gb", "NVIDIA H200 141 GB", vertex="NVIDIA_H200_141GB",
              ecs=("p5e", r"p5en?\..*")),
        _kind("nvidia-a10g", "NVIDIA A10G 24 GB (AWS only)", gke=False,
              ecs=("g5", r"g5\..*")),
        _kind("nvidia-l40s", "NVIDIA L40S 48 GB (AWS only)", gke=False,
              ecs=("g6e", r"g6e\..*")),
    )
}


def gpu_kind(name: str) -> GpuKind:
    """Look up a GPU kind by knot's name (case-insensitive).

    Args:
        name: A key of :data:`GPU_KINDS`, e.g. ``"nvidia-a100-80gb"``.

    Returns:
        The GPU kind.

    Raises:
        ConfigurationError: ``name`` is not a known GPU kind; the message lists them.
    """
    kind = GPU_KINDS.get(name.strip().lower())
    if kind is None:
        raise ConfigurationError(
            f"Unknown GPU kind {name!r}. Use one of: {', '.join(GPU_KINDS)} "
            "(see docs/deploy.md for each platform's name)."
        )
    return kind


# MIG (Multi-Instance GPU) slices each GPU kind can be partitioned into, as the NVIDIA
# device plugin's mixed strategy names them: resource ``nvidia.com/mig-<profile>``.
MIG_PROFILES: dict[str, tuple[str, ...]] = {
    "nvidia-tesla-a100": ("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "nvidia-a100-80gb": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "nvidia-h100-80gb": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "nvidia-h200-141gb": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb",
                          "7g.141gb"),
}
ALL_MIG_PROFILES: tuple[str, ...] = tuple(
    sorted({profile for profiles in MIG_PROFILES.values() for profile in profiles})
)


def mig_resource(profile: str) -> str:
    """The Kubernetes extended resource of a MIG slice.

    Examples:
        >>> mig_resource("1g.10gb")
        'nvidia.com/mig-1g.10gb'
    """
    return f"nvidia.com/mig-{profile}"


def mig_variable_key(profile: str) -> str:
    """The job variable of a MIG slice in knot's kubernetes template (no dots: Prefect
    reads dots in template placeholders as nesting).

    Examples:
        >>> mig_variable_key("1g.10gb")
        'mig_1g_10gb'
    """
    return "mig_" + profile.replace(".", "_")
