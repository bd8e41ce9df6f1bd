"""GPU slots on a shared host: concurrent flow runs each get their own GPUs.

A host with N GPUs is declared once (:func:`declare_gpu_host`) as N Prefect global
concurrency limits of one slot each, ``knot-gpu:HOST:0`` ... ``knot-gpu:HOST:N-1``.
A run leases the GPUs it needs (:func:`gpu_lease`): it takes free slot limits with a
Prefect concurrency lease, sets ``CUDA_VISIBLE_DEVICES`` to their numbers, renews the
lease while it runs and releases it at the end. A run that crashes stops renewing, so
its lease expires and the Prefect server's repossessor service frees its slots (within
the lease time plus the service's loop, 15 s by default).

A request for more GPUs than the host declares is refused before anything runs, with
the host's count in the message.

The host a worker runs on is named by ``KNOT_GPU_HOST`` in the run's environment (a
process pool's job variables set it); ``host=`` overrides it.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knot_prefect.errors import ConfigurationError, KnotError

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient

HOST_ENV = "KNOT_GPU_HOST"
SLOT_PREFIX = "knot-gpu"
# Prefect leases last at least a minute.
MIN_LEASE_SECONDS = 60.0


class GpuRequestError(ConfigurationError):
    """A run asks for more GPUs than its host declares, or names no host."""


class GpuSlotsBusy(KnotError):
    """No set of free GPU slots came up within the lease request's timeout."""


@dataclass(frozen=True)
class GpuLease:
    """GPU slots a run holds.

    Attributes:
        host: The host's name.
        slots: The slot numbers, which are the host's CUDA device ids.
        lease_ids: Prefect concurrency lease of each slot.
    """

    host: str
    slots: tuple[int, ...]
    lease_ids: tuple[UUID, ...]

    @property
    def cuda_visible_devices(self) -> str:
        """The value of ``CUDA_VISIBLE_DEVICES`` for this lease, e.g. ``"0,3"``."""
        return ",".join(str(slot) for slot in self.slots)


def slot_name(host: str, slot: int) -> str:
    """The global concurrency limit of one GPU slot.

    Examples:
        >>> slot_name("box-1", 0)
        'knot-gpu:box-1:0'
    """
    return f"{SLOT_PREFIX}:{host}:{slot}"


def declare_gpu_host(host: str, gpus: int) -> None:
    """Declare that ``host`` has ``gpus`` GPUs (one concurrency limit per GPU).

    Re-declaring with fewer GPUs removes the extra slots.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    if gpus < 1:
        raise GpuRequestError(f"a GPU host declares 1 or more GPUs, not {gpus}.")
    with get_client(sync_client=True) as client:
        for slot in range(gpus):
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=slot_name(host, slot), limit=1)
                )
        for slot in _declared_slots(client, host):
            if slot >= gpus:
                client.delete_global_concurrency_limit_by_name(slot_name(host, slot))


def host_gpus(host: str) -> int:
    """How many GPUs ``host`` declares (0 when it was never declared)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return len(_declared_slots(client, host))


def _declared_slots(client: SyncPrefectClient, host: str) -> list[int]:
    prefix = f"{SLOT_PREFIX}:{host}:"
    slots: list[int] = []
    offset = 0
    while True:
        page = client.read_global_concurrency_limits(limit=200, offset=offset)
        slots += [int(limit.name[len(prefix):]) for limit in page
                  if limit.name.startswith(prefix) and limit.name[len(prefix):].isdigit()]
        if len(page) < 200:
            return sorted(slots)
        offset += 200


def check_gpu_request(gpus: int, host: str) -> int:
    """Refuse a request for more GPUs than ``host`` declares; return the host's count."""
    declared = host_gpus(host)
    if gpus > declared:
        raise GpuRequestError(
            f"the run asks for {gpus} GPU(s) but host {host!r} declares {declared}; ask for "
            f"{declared} or fewer, or run it on a host with more GPUs"
            + (" (declare_gpu_host)." if not declared else ".")
        )
    return declared


def acquire_gpus(
    gpus: int,
    host: str | None = None,
    *,
    lease_seconds: float = MIN_LEASE_SECONDS,
    timeout: float | None = None,
    poll_interval: float = 1.0,
) -> GpuLease:
    """Lease ``gpus`` distinct GPU slots of ``host``, waiting until that many are free.

    Args:
        gpus: How many GPUs.
        host: The host; ``KNOT_GPU_HOST`` when None.
        lease_seconds: How long the lease lasts without renewal (60 s or more).
        timeout: Seconds to wait for free slots; None waits as long as it takes.
        poll_interval: Mean seconds between tries while every slot is taken.

    Raises:
        GpuRequestError: No host, or more GPUs than the host declares.
        GpuSlotsBusy: Not enough slots came free within ``timeout``.
    """
    from prefect.client.orchestration import get_client

    host = _host(host)
    declared = check_gpu_request(gpus, host)
    lease_seconds = max(lease_seconds, MIN_LEASE_SECONDS)
    deadline = None if timeout is None else time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            taken: list[tuple[int, UUID]] = []
            # Start at a random slot so concurrent runs spread instead of racing for 0.
            start = random.randrange(declared)
            for offset in range(declared):
                slot = (start + offset) % declared
                lease_id = _try_slot(client, host, slot, lease_seconds)
                if lease_id is not None:
                    taken.append((slot, lease_id))
                    if len(taken) == gpus:
                        taken.sort()
                        return GpuLease(host, tuple(s for s, _ in taken),
                                        tuple(lease for _, lease in taken))
            for _, lease_id in taken:  # not enough: give back, so no run holds half
                client.release_concurrency_slots_with_lease(lease_id)
            if deadline is not None and time.monotonic() > deadline:
                raise GpuSlotsBusy(
                    f"{gpus} of host {host!r}'s {declared} GPU slot(s) did not come free "
                    f"within {timeout:g}s."
                )
            time.sleep(random.uniform(0.5, 1.5) * poll_interval)


def _try_slot(client: SyncPrefectClient, host: str, slot: int, lease_seconds: float
              ) -> UUID | None:
    from uuid import UUID

    from httpx import HTTPStatusError

    try:
        response = client.increment_concurrency_slots_with_lease(
            names=[slot_name(host, slot)], slots=1, mode="concurrency",
            lease_duration=lease_seconds,
        )
    except HTTPStatusError as exc:
        if exc.response.status_code == 423:  # taken
            return None
        raise
    return UUID(response.json()["lease_id"])


def release_gpus(lease: GpuLease) -> None:
    """Give a lease's slots back."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for lease_id in lease.lease_ids:
            with contextlib.suppress(Exception):  # an expired lease is already free
                client.release_concurrency_slots_with_lease(lease_id)


@contextlib.contextmanager
def gpu_lease(
    gpus: int,
    host: str | None = None,
    *,
    lease_seconds: float = MIN_LEASE_SECONDS,
    timeout: float | None = None,
) -> Iterator[GpuLease]:
    """Hold ``gpus`` GPU slots of the host, with ``CUDA_VISIBLE_DEVICES`` set, meanwhile.

    Enter it before anything initialises CUDA (CUDA reads the variable once).

    Examples:
        ```python
        from knot_prefect.compute.gpu_slots import gpu_lease

        @flow
        def fine_tune():
            with gpu_lease(2):   # e.g. CUDA_VISIBLE_DEVICES=1,3
                train()
        ```
    """
    lease = acquire_gpus(gpus, host, lease_seconds=lease_seconds, timeout=timeout)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, lease_seconds, stop),
                               name="knot-gpu-lease", daemon=True)
    renewer.start()
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = lease.cuda_visible_devices
    try:
        yield lease
    finally:
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
        stop.set()
        renewer.join()
        release_gpus(lease)


def _renew(lease: GpuLease, lease_seconds: float, stop: threading.Event) -> None:
    from prefect.client.orchestration import get_client

    lease_seconds = max(lease_seconds, MIN_LEASE_SECONDS)
    with get_client(sync_client=True) as client:
        while not stop.wait(lease_seconds / 3):
            for lease_id in lease.lease_ids:
                with contextlib.suppress(Exception):  # retried on the next beat
                    client.renew_concurrency_lease(lease_id, lease_seconds)


def _host(host: str | None) -> str:
    host = host or os.environ.get(HOST_ENV)
    if not host:
        raise GpuRequestError(
            f"no GPU host named: pass host= or set {HOST_ENV} in the run's environment "
            "(e.g. in the process pool's job variables env)."
        )
    return host
