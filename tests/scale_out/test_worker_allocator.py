"""Dask workers' allocator: the mmap threshold Dask's nanny freezes, and knot raising it.

glibc marks a chunk it mapped straight from the kernel (``IS_MMAPPED``, bit 1 of the
chunk's size word): such memory is zeroed page by page on first use and unmapped when
freed, so a scoring loop that allocates columns of a few MB pays page faults for every
batch. Below the mmap threshold the chunk comes from the heap and is reused.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from knot_prefect.flows.worker_allocator import tune_worker_allocator

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")

COLUMN_BYTES = 2 * 1024 * 1024  # a float64 column of a 262,144-row batch
IS_MMAPPED = 0x2


def mapped_afresh(size: int = COLUMN_BYTES) -> bool:
    """Whether glibc serves a ``size``-byte allocation with a fresh mapping."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    pointer = libc.malloc(size)
    assert pointer
    header = ctypes.c_size_t.from_address(pointer - ctypes.sizeof(ctypes.c_size_t)).value
    libc.free(pointer)
    return bool(header & IS_MMAPPED)


# In a pool thread, as a Dask worker runs its tasks.
PROBE = """
import json
from concurrent.futures import ThreadPoolExecutor
from tests.scale_out.test_worker_allocator import mapped_afresh
from knot_prefect.flows.worker_allocator import raise_mmap_threshold
with ThreadPoolExecutor(1) as pool:
    first = pool.submit(mapped_afresh).result()
    again = pool.submit(mapped_afresh).result()
    raised = raise_mmap_threshold(32 * 1024 * 1024)
    after = pool.submit(mapped_afresh).result()
print(json.dumps({"first": first, "again": again, "raised": raised, "after": after}))
"""


def probe(environment: dict[str, str]) -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, "-c", PROBE], env={**env, **environment},
                            capture_output=True, text=True, check=True, cwd=os.getcwd())
    answer: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_a_trim_threshold_freezes_the_mmap_threshold_until_knot_raises_it() -> None:
    # What Dask's nanny sets: every 2 MiB column is a fresh mapping, again and again ...
    frozen = probe({"MALLOC_TRIM_THRESHOLD_": "65536"})
    assert frozen["first"] and frozen["again"]
    # ... until the threshold is raised.
    assert frozen["raised"] is True
    assert frozen["after"] is False
    # glibc's own adaptive threshold: after one such block is freed, the next comes
    # from the heap.
    adaptive = probe({})
    assert adaptive["first"] and not adaptive["again"]


def test_nothing_changes_outside_a_dask_worker() -> None:
    assert tune_worker_allocator() is False


def _retune(threshold: str | None) -> dict[str, Any]:
    """On a worker: freeze the threshold as the nanny left it, then tune afresh."""
    import knot_prefect.flows.worker_allocator as allocator

    allocator.raise_mmap_threshold(128 * 1024)  # glibc's default, as frozen by the nanny
    previous = os.environ.pop("KNOT_WORKER_MMAP_THRESHOLD", None)
    if threshold is not None:
        os.environ["KNOT_WORKER_MMAP_THRESHOLD"] = threshold
    try:
        allocator._tuned = None
        tuned = allocator.tune_worker_allocator()
        return {"tuned": tuned, "nanny": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                "mapped": mapped_afresh()}
    finally:
        os.environ.pop("KNOT_WORKER_MMAP_THRESHOLD", None)
        if previous is not None:
            os.environ["KNOT_WORKER_MMAP_THRESHOLD"] = previous
        allocator._tuned = None
        allocator.tune_worker_allocator()


@pytest.fixture
def client(dask_scheduler: str) -> Iterator[Any]:
    from distributed import Client

    with Client(dask_scheduler) as connected:
        yield connected


def test_a_dask_worker_gets_the_threshold_raised_unless_turned_off(client: Any) -> None:
    off = client.submit(_retune, "0", pure=False).result()
    assert off["nanny"] == "65536"  # the suite's workers run under Dask's nanny
    assert off == {"tuned": False, "nanny": "65536", "mapped": True}
    on = client.submit(_retune, None, pure=False).result()
    assert on == {"tuned": True, "nanny": "65536", "mapped": False}
