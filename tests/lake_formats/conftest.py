"""Fixtures of the open-table-format lakes: fresh lakes on a local folder, moto's S3 and
the GCS emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lake_formats._lakes import DELTA_BACKENDS, make_delta_lake

FORMAT_BUCKET = "knot-lake-formats"


@pytest.fixture(scope="session")
def contract_s3_bucket(moto_s3: str) -> str:
    """A bucket of moto's S3 for the Delta lakes of these tests."""
    import boto3

    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(
        Bucket=FORMAT_BUCKET
    )
    return FORMAT_BUCKET


@pytest.fixture(params=DELTA_BACKENDS)
def delta(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """A fresh, empty Delta lake on a local folder and on moto's S3."""
    return make_delta_lake(request.param, tmp_path, request)


@pytest.fixture
def local_delta(tmp_path: Path) -> object:
    """A fresh, empty Delta lake on a local folder."""
    return make_delta_lake("delta-local", tmp_path, None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def gcs_bucket_name(gcs_emulator: str) -> str:
    """A bucket of the GCS emulator for the Delta lakes of these tests."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]
    client.create_bucket(FORMAT_BUCKET)
    return FORMAT_BUCKET
