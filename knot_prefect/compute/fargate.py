"""The CPU and memory sizes AWS Fargate accepts for an ECS task.

Fargate runs a task only at fixed CPU sizes, each with its own range of memory; other
combinations are refused by ECS when the task definition is registered. knot checks
them before deploying so the error names the profile instead of surfacing in a run.

Examples:
    >>> fargate_size_problem(1024, 4096) is None
    True
    >>> print(fargate_size_problem(1024, 1024))
    Fargate gives 1024 CPU units 2048-8192 MiB in steps of 1024 MiB, not 1024 MiB
"""

from __future__ import annotations

# CPU units -> (lowest MiB, highest MiB, step MiB); 256 CPU units allow 512, 1024, 2048.
FARGATE_SIZES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
# What the ECS worker uses when a task definition leaves CPU or memory out.
ECS_DEFAULT_CPU = 1024
ECS_DEFAULT_MEMORY = 2048


def fargate_size_problem(cpu_units: int | None, memory_mib: int | None) -> str | None:
    """Say why Fargate refuses this size, or ``None`` when it accepts it.

    Args:
        cpu_units: ECS CPU units (1024 per vCPU); ``None`` for the worker's default.
        memory_mib: Memory in MiB; ``None`` for the worker's default.

    Returns:
        A sentence describing the problem, or ``None``.
    """
    cpu = cpu_units or ECS_DEFAULT_CPU
    memory = memory_mib or ECS_DEFAULT_MEMORY
    if cpu not in FARGATE_SIZES:
        sizes = ", ".join(f"{units} ({units / 1024:g} vCPU)" for units in FARGATE_SIZES)
        return f"Fargate offers CPU sizes {sizes}, not {cpu} CPU units"
    low, high, step = FARGATE_SIZES[cpu]
    if cpu == 256:
        if memory not in (512, 1024, 2048):
            return f"Fargate gives 256 CPU units 512, 1024 or 2048 MiB, not {memory} MiB"
        return None
    if not (low <= memory <= high and (memory - low) % step == 0):
        return (
            f"Fargate gives {cpu} CPU units {low}-{high} MiB in steps of {step} MiB, "
            f"not {memory} MiB"
        )
    return None
