"""A temporary Prefect API and the recipe's blocks against a real PostgreSQL and MLflow.

The database and the tracking server come from the environment (PG_HOST, PG_PORT,
PG_DATABASE, PG_USER, PG_PASSWORD, MLFLOW_TRACKING_URI), as in the CI workflow.
"""

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
    """blocks.yaml applied; the Feast repo copied to a scratch folder."""
    from knot_prefect.documents import apply_file

    scratch = tmp_path_factory.mktemp("churn-postgres")
    repo = scratch / "feature_repo"
    shutil.copytree(PROJECT / "feature_repo", repo,
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(scratch / ".knot"))
        patch.setenv("FEATURE_REPO", str(repo))
        apply_file(PROJECT / "blocks.yaml")
        yield scratch
