"""A temporary Prefect API and the project's block documents in a scratch folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """blocks.yaml applied with the warehouse and MLflow store in a scratch folder."""
    from knot_prefect.documents import apply_file

    scratch = tmp_path_factory.mktemp("gpu-training")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(scratch / ".knot"))
        patch.setenv("GPU_WAREHOUSE_PATH", str(scratch / "warehouse.duckdb"))
        apply_file(PROJECT / "blocks.yaml")
        yield scratch
