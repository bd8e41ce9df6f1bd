"""A temporary Prefect API, and Snowflake emulated in-process by fakesnow.

Point the blocks at a real account instead by running the pipeline, not these tests:
fakesnow answers every snowflake.connector.connect() while a test runs.
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
    """blocks.yaml applied with emulated Snowflake credentials and a scratch Feast repo."""
    import fakesnow

    from knot_prefect.documents import apply_file

    scratch = tmp_path_factory.mktemp("churn-snowflake")
    repo = scratch / "feature_repo"
    shutil.copytree(PROJECT / "feature_repo", repo,
                    ignore=shutil.ignore_patterns("data", "__pycache__"))
    with pytest.MonkeyPatch.context() as patch, fakesnow.patch():
        patch.setenv("KNOT_HOME", str(scratch / ".knot"))
        apply_file(PROJECT / "blocks.yaml", environ={
            "SNOWFLAKE_ACCOUNT": "emulated", "SNOWFLAKE_USER": "ml",
            "SNOWFLAKE_PASSWORD": "emulated", "SNOWFLAKE_DATABASE": "ANALYTICS",
            "FEATURE_REPO": str(repo),
        })
        yield scratch
