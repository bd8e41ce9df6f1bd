"""Ray task runners for knot's flows: prefect-ray's ``RayTaskRunner``, chosen and sized here.

A flow names Ray with ``"ray"`` (a temporary local Ray started for the run, one CPU
per worker, no dashboard) or the address of an existing cluster (``"ray://HOST:10001"``
for the Ray client, or ``"auto"`` / ``"HOST:6379"`` on one of its nodes). Each task may
ask for resources (``num_cpus``, ``num_gpus``, ``memory``, custom resources) through
prefect-ray's ``remote_options``.

Examples:
    >>> is_ray_runner("ray"), is_ray_runner("ray://head:10001"), is_ray_runner("dask")
    (True, True, False)
    >>> task_resources({"num_cpus": 1, "num_gpus": 0.5})
    {'num_cpus': 1, 'num_gpus': 0.5}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

LOCAL_RAY = "ray"
# What a Ray task may ask for (``ray.remote`` options), besides custom resources.
RESOURCE_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources", "accelerator_type")


def is_ray_runner(runner: str | None) -> bool:
    """Whether a ``runner`` parameter names Ray: ``"ray"`` or a ``ray://`` address."""
    return runner is not None and (runner == LOCAL_RAY or runner.startswith("ray://"))


def task_resources(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check what each task asks Ray for, e.g. ``{"num_cpus": 1, "num_gpus": 1}``.

    Raises:
        ConfigurationError: For an option Ray does not schedule by, or a negative amount.
    """
    checked = dict(resources or {})
    unknown = sorted(set(checked) - set(RESOURCE_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"trial_resources takes {', '.join(RESOURCE_OPTIONS)}, not {unknown}: put "
            "custom resources under 'resources', e.g. {'resources': {'tpu': 1}}."
        )
    for name in ("num_cpus", "num_gpus", "memory"):
        value = checked.get(name)
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise ConfigurationError(f"trial_resources[{name!r}] must be a number >= 0, "
                                     f"not {value!r}.")
    return checked


def ray_runner_for(runner: str, workers: int = 2) -> TaskRunner[Any]:
    """An unstarted ``RayTaskRunner`` for ``"ray"`` (a local Ray) or a cluster address.

    Args:
        runner: ``"ray"``, or ``"ray://HOST:PORT"`` of an existing cluster.
        workers: CPUs of the temporary local Ray (tasks of one CPU run that many at once).
    """
    try:
        from prefect_ray import RayTaskRunner
    except ModuleNotFoundError:
        raise ConfigurationError(
            "Ray needs prefect-ray: pip install 'knot-prefect[ray]'."
        ) from None
    if runner == LOCAL_RAY:
        return RayTaskRunner(address="local", init_kwargs=local_ray_options(workers))
    return RayTaskRunner(address=runner)


def local_ray_options(workers: int) -> dict[str, Any]:
    """``ray.init`` options (but the address) of a temporary local Ray of ``workers`` CPUs.

    Start it with ``ray.init(address="local", **local_ray_options(2))``: ``"local"``
    starts a new Ray even where RAY_ADDRESS or a stopped ``ray start`` head's
    ``/tmp/ray/ray_current_cluster`` would make ``ray.init()`` connect elsewhere.

    Args:
        workers: CPUs of the local Ray (tasks of one CPU run that many at once).

    Examples:
        >>> local_ray_options(2)["num_cpus"]
        2
    """
    if workers < 1:
        raise ConfigurationError(f"workers must be at least 1, not {workers}.")
    # Its workers run at this process's priority: Ray lowers theirs (niceness 15) for
    # nodes given over to Ray, and on a machine shared with the flow process, the
    # Prefect and MLflow servers and other jobs the trials then barely get a core.
    return {"num_cpus": workers, "include_dashboard": False,
            "_system_config": {"worker_niceness": os.nice(0)}}


def is_ray_task_runner(runner: Any) -> bool:
    """Whether ``runner`` is prefect-ray's ``RayTaskRunner`` (checked without importing it)."""
    return type(runner).__module__.startswith("prefect_ray")


def ray_workers() -> int:
    """CPUs of the Ray cluster this process is connected to (at least 1)."""
    import ray

    return max(int(ray.cluster_resources().get("CPU", 1)), 1)


def check_scoring_runner(runner: str | None, spark: str | None,
                         dask_address: str | None) -> None:
    """Refuse a scoring ``runner`` that is not Ray, or one given beside another engine.

    Raises:
        ConfigurationError: Naming the engines given and the one way to choose.
    """
    if runner is None:
        return
    if not is_ray_runner(runner):
        raise ConfigurationError(
            f"runner {runner!r} is not Ray: pass 'ray' for a temporary local Ray or "
            "'ray://HOST:PORT' of a Ray cluster (Dask: dask_address=, Spark: spark=)."
        )
    if spark is not None or dask_address is not None:
        raise ConfigurationError(
            "batch_inference_flow scores on one engine: pass runner=, spark= or "
            "dask_address=, not several."
        )


@contextlib.contextmanager
def started_ray_runner(runner: str, workers: int = 2,
                       resources: Mapping[str, Any] | None = None
                       ) -> Iterator[TaskRunner[Any]]:
    """:func:`ray_runner_for`, started for the ``with`` block, each task asking ``resources``."""
    from prefect_ray.context import remote_options

    with ray_runner_for(runner, workers) as ray_runner, remote_options(
            **task_resources(resources)):
        yield ray_runner
