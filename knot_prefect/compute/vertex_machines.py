"""Choosing a Vertex AI machine type that fits a profile's CPU, memory and GPUs.

Vertex AI sizes a custom job by ``machine_type``; GPUs attach to a machine family that
supports them (N1 for T4, V100, P100 and P4; A2 for A100; G2 for L4; A3 for H100 and
H200). knot picks the smallest machine of the right family that has the requested GPU
count and at least the requested vCPUs and memory. A profile's ``machine_type`` field
overrides the choice.

Examples:
    >>> from knot_prefect.compute.gpus import gpu_kind
    >>> vertex_machine_type(None, 0, cpu=None, memory_mib=None)
    'n1-standard-4'
    >>> vertex_machine_type(gpu_kind("nvidia-l4"), 1, cpu=10, memory_mib=None)
    'g2-standard-12'
    >>> vertex_machine_type(gpu_kind("nvidia-a100-80gb"), 2, cpu=None, memory_mib=None)
    'a2-ultragpu-2g'
"""

from __future__ import annotations

from dataclasses import dataclass

from knot_prefect.compute.gpus import GpuKind


@dataclass(frozen=True)
class MachineShape:
    """A Vertex AI machine type, its vCPUs, memory (GiB) and GPU count (0: any)."""

    name: str
    vcpus: int
    memory_gib: float
    gpus: int = 0


def _n1(kind: str, per_vcpu_gib: float) -> list[MachineShape]:
    return [MachineShape(f"n1-{kind}-{n}", n, n * per_vcpu_gib) for n in (2, 4, 8, 16, 32, 64, 96)]


# N1 machines take 1, 2, 4 or 8 attached GPUs of the N1 kinds; the others are fixed shapes.
_N1 = _n1("standard", 3.75) + _n1("highmem", 6.5)
_FAMILIES: dict[str, list[MachineShape]] = {
    "NVIDIA_TESLA_A100": [
        MachineShape("a2-highgpu-1g", 12, 85, 1), MachineShape("a2-highgpu-2g", 24, 170, 2),
        MachineShape("a2-highgpu-4g", 48, 340, 4), MachineShape("a2-highgpu-8g", 96, 680, 8),
        MachineShape("a2-megagpu-16g", 96, 1360, 16),
    ],
    "NVIDIA_A100_80GB": [
        MachineShape("a2-ultragpu-1g", 12, 170, 1), MachineShape("a2-ultragpu-2g", 24, 340, 2),
        MachineShape("a2-ultragpu-4g", 48, 680, 4), MachineShape("a2-ultragpu-8g", 96, 1360, 8),
    ],
    "NVIDIA_L4": [
        MachineShape("g2-standard-4", 4, 16, 1), MachineShape("g2-standard-8", 8, 32, 1),
        MachineShape("g2-standard-12", 12, 48, 1), MachineShape("g2-standard-16", 16, 64, 1),
        MachineShape("g2-standard-32", 32, 128, 1), MachineShape("g2-standard-24", 24, 96, 2),
        MachineShape("g2-standard-48", 48, 192, 4), MachineShape("g2-standard-96", 96, 384, 8),
    ],
    "NVIDIA_H100_80GB": [
        MachineShape("a3-highgpu-1g", 26, 234, 1), MachineShape("a3-highgpu-2g", 52, 468, 2),
        MachineShape("a3-highgpu-4g", 104, 936, 4), MachineShape("a3-highgpu-8g", 208, 1872, 8),
    ],
    "NVIDIA_H200_141GB": [MachineShape("a3-ultragpu-8g", 224, 2952, 8)],
}
_N1_GPU_COUNTS = (1, 2, 4, 8)
DEFAULT_MACHINE_TYPE = "n1-standard-4"


class NoMachineFits(ValueError):
    """No Vertex AI machine type has the requested GPUs, vCPUs and memory."""


def vertex_machine_type(
    kind: GpuKind | None, gpu_count: int, *, cpu: float | None, memory_mib: int | None
) -> str:
    """Choose the smallest machine type with the GPUs, vCPUs and memory asked for.

    Args:
        kind: The GPU kind, or ``None`` for a CPU-only job.
        gpu_count: How many GPUs of ``kind``.
        cpu: vCPUs wanted, or ``None`` for no minimum.
        memory_mib: Memory wanted in MiB, or ``None`` for no minimum.

    Returns:
        A Vertex AI ``machine_type``.

    Raises:
        NoMachineFits: No machine of the family fits; the message lists the largest.
    """
    if cpu is None and memory_mib is None and (kind is None or gpu_count == 0):
        return DEFAULT_MACHINE_TYPE
    accelerator = kind.vertex_accelerator if kind else None
    if accelerator in _FAMILIES:
        candidates = [m for m in _FAMILIES[accelerator] if m.gpus == gpu_count]
        if not candidates:
            counts = sorted({m.gpus for m in _FAMILIES[accelerator]})
            raise NoMachineFits(
                f"Vertex AI offers {accelerator} in counts of {counts}, not {gpu_count}"
            )
    else:
        if gpu_count and gpu_count not in _N1_GPU_COUNTS:
            raise NoMachineFits(
                f"Vertex AI attaches {accelerator} to N1 machines in counts of "
                f"{list(_N1_GPU_COUNTS)}, not {gpu_count}"
            )
        candidates = _N1
    fitting = [
        m for m in candidates
        if (cpu is None or m.vcpus >= cpu)
        and (memory_mib is None or m.memory_gib * 1024 >= memory_mib)
    ]
    if not fitting:
        largest = max(candidates, key=lambda m: (m.vcpus, m.memory_gib))
        raise NoMachineFits(
            f"no Vertex AI machine with {gpu_count or 'no'} GPU(s) has {cpu or 0:g} vCPUs "
            f"and {memory_mib or 0} MiB; the largest is {largest.name} "
            f"({largest.vcpus} vCPUs, {largest.memory_gib:g} GiB)"
        )
    return min(fitting, key=lambda m: (m.vcpus, m.memory_gib)).name
