"""Dask task runners for knot's flows: chosen, started and sized in one place.

Like prefect-dask's ``utils`` module, this holds what a flow needs to run its tasks on
a Dask cluster: a ``DaskTaskRunner`` for a scheduler address or a temporary local
cluster (:func:`dask_runner_for`), started with the caller's environment kept
(:func:`started_dask_runner`), the runner a flow scores on (:func:`scoring_runner`)
and how many workers it has (:func:`workers_of`).

Examples:
    >>> is_dask_runner(None), workers_of(None)
    (False, 1)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

LOCAL_CLUSTER = "local"


def is_dask_runner(runner: Any) -> bool:
    """Whether ``runner`` is prefect-dask's ``DaskTaskRunner`` (checked without importing it)."""
    return type(runner).__module__.startswith("prefect_dask")


def dask_runner_for(address: str, workers: int = 2) -> TaskRunner[Any]:
    """A ``DaskTaskRunner`` for a scheduler address or a temporary local cluster.

    Args:
        address: ``"tcp://host:port"`` of a running scheduler, or ``"local"`` for a
            ``LocalCluster`` that lives as long as the run.
        workers: Worker processes of the temporary cluster (one thread each).

    Returns:
        An unstarted task runner.

    Raises:
        ConfigurationError: For an address that is neither ``"local"`` nor a URL, or
            when this process has a default Dask client connected elsewhere
            (prefect-dask would run on that client's cluster instead).
    """
    from prefect_dask import DaskTaskRunner

    _refuse_other_default_client(address)
    if address == LOCAL_CLUSTER:
        if workers < 1:
            raise ConfigurationError(f"dask_workers must be at least 1, not {workers}.")
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                            "processes": True, "dashboard_address": None},
        )
    if "://" not in address:
        raise ConfigurationError(
            f"dask_address {address!r} is not a scheduler address: pass 'tcp://HOST:PORT' "
            f"of a running scheduler, or {LOCAL_CLUSTER!r} for a temporary local cluster."
        )
    return DaskTaskRunner(address=address)


def _refuse_other_default_client(address: str) -> None:
    """Refuse an address that prefect-dask would silently replace.

    ``DaskTaskRunner`` connects to the cluster of the process's default Dask client
    (``distributed.get_client()``) whenever there is one, whatever address or cluster
    settings it was given.
    """
    import sys

    if "distributed" not in sys.modules:
        return  # no client can exist yet
    import distributed

    try:
        scheduler = distributed.get_client().scheduler
    except ValueError:
        return
    current = getattr(scheduler, "address", None)
    if not isinstance(current, str) or _same_scheduler(address, current):
        return
    wanted = "a temporary local cluster" if address == LOCAL_CLUSTER else address
    raise ConfigurationError(
        f"This process has a default Dask client connected to {current}, and "
        f"prefect-dask's DaskTaskRunner would run on that cluster instead of {wanted}. "
        f"Pass {current!r} as the address to use it, or close that client (or create it "
        "with Client(..., set_as_default=False)) to run where asked."
    )


def _same_scheduler(address: str, current: str) -> bool:
    """Whether ``address`` names ``current``'s scheduler (``localhost`` = ``127.0.0.1``)."""
    if address == LOCAL_CLUSTER:
        return False
    from distributed.comm.addressing import resolve_address

    try:
        return bool(resolve_address(address) == resolve_address(current))
    except (ValueError, OSError):  # an address that does not resolve
        return address == current


@contextlib.contextmanager
def scoring_runner(address: str | None, workers: int = 2) -> Iterator[TaskRunner[Any] | None]:
    """The task runner partitions are scored on, started for the ``with`` block.

    ``address`` given: a Dask runner for it (see :func:`dask_runner_for`). Otherwise the
    flow's own task runner when it is a ``DaskTaskRunner`` (set with
    ``flow.with_options(task_runner=...)``), else None: score in the flow process.
    """
    if address is None:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        runner = context.task_runner if context else None
        yield runner if is_dask_runner(runner) else None
        return
    with started_dask_runner(address, workers) as runner:
        yield runner


@contextlib.contextmanager
def started_dask_runner(address: str, workers: int = 2) -> Iterator[TaskRunner[Any]]:
    """:func:`dask_runner_for`, started for the ``with`` block, its cluster up at once.

    Each nanny of a temporary local cluster writes its workers' settings
    (``distributed.nanny.pre-spawn-environ``: ``OMP_NUM_THREADS=1``,
    ``MALLOC_TRIM_THRESHOLD_``, ``PYTHONHASHSEED`` ...) into this process's environment
    before it spawns a worker. They are put back as they were once the cluster is up and
    again when the block ends, so that the caller, and libraries or processes it starts
    later, keep their own thread counts and allocator.
    """
    names = _nanny_environment_names()
    before = {name: os.environ.get(name) for name in names}
    try:
        with dask_runner_for(address, workers) as runner:
            # prefect-dask starts (or connects to) the cluster on first use of its client.
            getattr(runner, "client", None)
            _restore_environment(before)
            yield runner
    finally:
        _restore_environment(before)


def _nanny_environment_names() -> set[str]:
    import dask.config
    import distributed  # noqa: F401  (registers the distributed.* configuration)

    configured = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return set(configured) | {"PYTHONHASHSEED"}


def _restore_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def workers_of(runner: TaskRunner[Any] | None) -> int:
    """How many workers the runner has (1 in the flow process)."""
    from knot_prefect.flows.ray_runner import is_ray_task_runner, ray_workers

    if is_ray_task_runner(runner):
        return ray_workers()
    if runner is None or not is_dask_runner(runner):
        return 1
    with contextlib.suppress(Exception):
        info = runner.client.scheduler_info()  # type: ignore[attr-defined]
        return max(len(info.get("workers", {})), 1)
    return 1
