"""Fixtures of the compute tests: one real Prefect server, two process pools with a
worker each ("cpu" and "gpu", the latter marked by its job variables), and result
storage both reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.deploy.conftest import flow_run, google_adc  # noqa: F401 (shared fixtures)

ROOT = Path(__file__).resolve().parents[2]
CPU_POOL = "compute-cpu-pool"
GPU_POOL = "compute-gpu-pool"
GPU_HOST = "compute-test-host"
STORAGE = "local-file-system/compute-step-results"



@pytest.fixture(scope="package")
def server(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sync client of the real Prefect server, the current API meanwhile, with a
    LocalFileSystem result storage block on a folder both workers reach as its
    default result storage."""
    from prefect.client.orchestration import get_client
    from prefect.filesystems import LocalFileSystem
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        temporary_settings,
    )

    folder = tmp_path_factory.mktemp("step-results")
    with (
        temporary_settings({PREFECT_API_URL: prefect_server,
                            PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: STORAGE}),
        get_client(sync_client=True) as client,
    ):
        LocalFileSystem(basepath=str(folder)).save(STORAGE.split("/")[1], overwrite=True)
        yield client


def _worker(client: Any, api: str, pool: str, folder: Path) -> Any:
    return services.process_worker(client, api, pool, folder, env={"PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="package")
def cpu_worker(server: Any, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Path]:
    """A real `prefect worker start` serving the "cpu" process pool; yields its log."""
    with _worker(server, prefect_server, CPU_POOL, tmp_path_factory.mktemp("cpu")) as log:
        yield log


@pytest.fixture(scope="package")
def gpu_worker(server: Any, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Path]:
    """The "gpu" pool's worker, with a step deployment whose job variables mark the pool
    as a GPU pool (one GPU and the host's name)."""
    from knot_prefect import ComputeProfile
    from knot_prefect.deploy import deploy_flow

    with _worker(server, prefect_server, GPU_POOL, tmp_path_factory.mktemp("gpu")) as log:
        profile = ComputeProfile(gpu_count=1, env={"KNOT_GPU_HOST": GPU_HOST})
        deploy_flow("step_flow", pool=GPU_POOL, profile=profile)
        yield log
