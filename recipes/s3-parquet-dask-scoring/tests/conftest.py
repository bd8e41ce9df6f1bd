"""A temporary Prefect API for the recipe's own tests; S3 and Dask come from the
environment (SCORING_BUCKET, AWS_*, AWS_ENDPOINT_URL, DASK_SCHEDULER_ADDRESS)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def s3_endpoint_ready() -> None:
    """Wait for an S3 emulator started just before the tests (README: `moto.server &`)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"Nothing answers at AWS_ENDPOINT_URL={endpoint}: start the S3 "
                            "emulator first (README.md, 'Test it').")
            time.sleep(0.5)


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
