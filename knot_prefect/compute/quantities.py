"""CPU and memory amounts: one convention in, each platform's notation out.

A compute profile states CPU as a number of vCPUs (``0.5``, ``4``) and memory as a whole
number of mebibytes or gibibytes with the Kubernetes suffix (``"512Mi"``, ``"8Gi"``).

Examples:
    >>> memory_mib("8Gi"), memory_mib("512Mi")
    (8192, 512)
    >>> kubernetes_cpu(0.5), kubernetes_cpu(2.0)
    ('500m', '2')
    >>> ecs_cpu_units(0.25), docker_memory("8Gi"), docker_nano_cpus(1.5)
    (256, '8192m', 1500000000)
"""

from __future__ import annotations

import re

_MEMORY = re.compile(r"^(?P<amount>[1-9][0-9]*)(?P<unit>Mi|Gi)$")


def parse_memory(value: str) -> int:
    """Validate a memory amount and return it in MiB.

    Args:
        value: A whole number followed by ``Mi`` or ``Gi``, e.g. ``"512Mi"`` or ``"8Gi"``.

    Returns:
        The amount in mebibytes.

    Raises:
        ValueError: The amount does not follow the convention; the message shows it.
    """
    match = _MEMORY.match(value.strip())
    if match is None:
        raise ValueError(
            f"memory {value!r} is not understood: write a whole number of mebibytes or "
            "gibibytes with a Kubernetes suffix, e.g. '512Mi' or '8Gi'."
        )
    amount = int(match["amount"])
    return amount * 1024 if match["unit"] == "Gi" else amount


def memory_mib(value: str) -> int:
    """The amount of a valid memory string in MiB (see :func:`parse_memory`)."""
    return parse_memory(value)


def kubernetes_cpu(cpu: float) -> str:
    """CPU as a Kubernetes quantity: whole vCPUs, or millicores for fractions."""
    millicores = round(cpu * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def ecs_cpu_units(cpu: float) -> int:
    """CPU in ECS units (1024 per vCPU)."""
    return round(cpu * 1024)


def docker_nano_cpus(cpu: float) -> int:
    """CPU as Docker's ``nano_cpus`` (10^9 per vCPU)."""
    return round(cpu * 1_000_000_000)


def docker_memory(value: str) -> str:
    """Memory in Docker's notation, where ``m`` means MiB."""
    return f"{memory_mib(value)}m"
