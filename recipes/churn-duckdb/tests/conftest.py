"""A temporary Prefect API and a scratch copy of the project's data folders."""

from __future__ import annotations

import shutil
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
    """blocks.yaml applied with every path in a scratch folder."""
    from knot_prefect.documents import apply_file

    scratch = tmp_path_factory.mktemp("churn")
    repo = scratch / "feature_repo"
    shutil.copytree(PROJECT / "feature_repo", repo,
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(scratch / ".knot"))
        patch.setenv("CHURN_WAREHOUSE_PATH", str(scratch / "warehouse.duckdb"))
        patch.setenv("CHURN_FEATURE_REPO", str(repo))
        apply_file(PROJECT / "blocks.yaml")
        yield scratch
