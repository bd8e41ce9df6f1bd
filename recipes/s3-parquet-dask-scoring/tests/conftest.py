"""A temporary Prefect API for the recipe's own tests; S3 and Dask come from the
environment (SCORING_BUCKET, AWS_*, AWS_ENDPOINT_URL, DASK_SCHEDULER_ADDRESS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
