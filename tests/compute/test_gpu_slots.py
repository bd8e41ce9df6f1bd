"""GPU slots on a shared host (real server, real process worker; CPU only: the "GPUs"
are slot numbers, and CUDA_VISIBLE_DEVICES is checked from inside each run)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from knot_prefect import ComputeProfile
from knot_prefect.compute import GpuRequestError, declare_gpu_host, run_step_on
from knot_prefect.compute.gpu_slots import GpuSlotsBusy, acquire_gpus, release_gpus
from tests.compute.conftest import GPU_HOST, GPU_POOL
from tests.services import wait_for

# Real worker processes start each run: on a loaded machine that takes minutes.
pytestmark = [pytest.mark.heavy, pytest.mark.timeout(1800)]

STEPS = Path(__file__).with_name("steps.py")
KILLED_HOST = "compute-killed-host"
LEASE_SECONDS = 60  # Prefect's shortest lease


def test_more_gpus_than_the_host_declares_is_refused_before_the_run(server: Any) -> None:
    declare_gpu_host(GPU_HOST, 2)
    with pytest.raises(GpuRequestError, match=r"asks for 3 GPU\(s\) but host "
                       r"'compute-test-host' declares 2"):
        acquire_gpus(3, GPU_HOST)
    runs = len(server.read_flow_runs())
    with pytest.raises(GpuRequestError, match="declares 2"):
        run_step_on(GPU_POOL, "tests.compute.steps:fail_with", "never runs", gpus=3,
                    gpu_host=GPU_HOST)
    assert len(server.read_flow_runs()) == runs  # no child run was created


def test_four_runs_on_two_slots_never_share_one_and_a_killed_runs_slot_comes_back(
    server: Any, gpu_worker: Path, tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment

    from knot_prefect.deploy import deploy_flow

    declare_gpu_host(GPU_HOST, 2)
    declare_gpu_host(KILLED_HOST, 1)
    for name, host in (("leased", GPU_HOST), ("leased-killed", KILLED_HOST)):
        deploy_flow(f"{STEPS}:leased_run", pool=GPU_POOL, name=name,
                    profile=ComputeProfile(env={"KNOT_GPU_HOST": host}))
    killed_out, out = tmp_path / "killed", tmp_path / "runs"
    killed_out.mkdir()
    out.mkdir()

    # A run that holds the killed host's only slot, killed while it holds it.
    killed = run_deployment("compute-test-leased-run/leased-killed", timeout=0,
                            parameters={"out": str(killed_out), "hold": 600})
    runs = [run_deployment("compute-test-leased-run/leased", timeout=0,
                           parameters={"out": str(out), "hold": 2}) for _ in range(4)]
    holding = wait_for("the killed run to hold its slot",
                       lambda: list(killed_out.glob("holding-*.json")), timeout=600)
    os.kill(json.loads(holding[0].read_text())["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    with pytest.raises(GpuSlotsBusy):  # still held: only the lease's expiry frees it
        acquire_gpus(1, KILLED_HOST, timeout=0)
    # The killed run stopped renewing: its slot is free once the lease expires and the
    # server's repossessor (every 15 s) revokes it.
    lease = acquire_gpus(1, KILLED_HOST, timeout=LEASE_SECONDS + 15 + 30)
    waited = time.monotonic() - killed_at
    release_gpus(lease)
    assert lease.slots == (0,) and waited <= LEASE_SECONDS + 15 + 30

    def finished() -> list[Any]:
        states = [server.read_flow_run(run.id).state for run in runs]
        return states if all(state.is_final() for state in states) else []

    states = wait_for("the four leased runs", finished, timeout=600, interval=1)
    log = gpu_worker.read_text(errors="replace")[-3000:]
    assert all(state.is_completed() for state in states), f"{states}\n{log}"
    records = [json.loads(path.read_text()) for path in out.glob("*-*-*.json")
               if not path.name.startswith("holding-")]
    assert len(records) == 4
    for record in records:
        assert record["cuda"] == str(record["slot"]) and record["slot"] in (0, 1)
    for slot in (0, 1):
        spans = sorted((r["start"], r["end"]) for r in records if r["slot"] == slot)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"two runs held slot {slot} at once: {spans}"

    crashed = wait_for("the killed run to be marked crashed",
                       lambda: server.read_flow_run(killed.id).state.is_final(), timeout=60)
    assert crashed
