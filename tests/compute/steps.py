"""Steps and flows the compute tests run on real process workers.

The workers import this module as ``tests.compute.steps`` (the repository is on their
PYTHONPATH); parent flows are deployed from this file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from knot_prefect.compute import gpu_lease, run_step_on


def fail_with(message: str) -> None:
    """A step that fails with ``message``."""
    raise ValueError(message)


def sleep_for(seconds: float, marker: str) -> None:
    """A step that says it started (its pid in ``marker``), then sleeps."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)


@flow(name="compute-test-slow-step-parent")
def slow_step_parent(pool: str, storage: str, marker: str) -> None:
    """A parent waiting on a step that sleeps for ten minutes on ``pool``."""
    run_step_on(pool, "tests.compute.steps:sleep_for", 600, marker, storage=storage)


@flow(name="compute-test-leased-run")
def leased_run(out: str, hold: float = 1.0) -> None:
    """Lease one GPU slot of the worker's host; record slot and times in ``out``.

    ``holding-RUN.json`` is written as soon as the slot is held (with the pid, for a
    test that kills the run), ``RUN.json`` when the work is done, still inside the lease.
    """
    with gpu_lease(1) as lease:
        started = time.time()
        assert os.environ["CUDA_VISIBLE_DEVICES"] == lease.cuda_visible_devices
        record = {"host": lease.host, "slot": lease.slots[0], "start": started,
                  "pid": os.getpid(), "cuda": os.environ["CUDA_VISIBLE_DEVICES"]}
        Path(out, f"holding-{flow_run.id}.json").write_text(json.dumps(record))
        time.sleep(hold)
        record["end"] = time.time()
        Path(out, f"{flow_run.id}.json").write_text(json.dumps(record))
