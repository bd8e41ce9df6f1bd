"""A temporary local cluster leaves the flow process's environment as it found it.

Dask's nannies write their workers' settings (one BLAS thread, the malloc trim
threshold, a fixed hash seed) into the environment of the process that starts them;
knot puts them back, so that a notebook or a flow process keeps its own thread counts
while its workers still get Dask's.
"""

from __future__ import annotations

import os

import pytest

from knot_prefect.flows.dask_runner import LOCAL_CLUSTER, started_dask_runner

NANNY_SETTINGS = ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def worker_settings() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in NANNY_SETTINGS}


def test_the_workers_get_dasks_settings_and_the_caller_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NANNY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    with started_dask_runner(LOCAL_CLUSTER, workers=1) as runner:
        during = worker_settings()
        on_workers = list(runner.client.run(worker_settings).values())  # type: ignore[attr-defined]
    after = worker_settings()
    assert on_workers == [{"OMP_NUM_THREADS": "1", "MALLOC_TRIM_THRESHOLD_": "65536",
                           "PYTHONHASHSEED": "6640"}]
    unset = dict.fromkeys(NANNY_SETTINGS)
    assert during == unset
    assert after == unset
