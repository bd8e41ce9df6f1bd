"""Delta lakes on a local folder and on moto's S3, for the shared contract and these tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

#: The Delta paths the shared warehouse contract runs on.
DELTA_BACKENDS = ["delta-local", "delta-s3"]


def s3_bucket_block(endpoint: str, bucket: str) -> Any:
    """A prefect-aws ``S3Bucket`` on moto, with the tests' credentials."""
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    from tests.cloud_warehouses.conftest import S3_SECRET

    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    return S3Bucket(bucket_name=bucket, credentials=credentials)


def make_delta_lake(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A fresh, empty Delta lake: ``delta-local`` or ``delta-s3`` (moto)."""
    from knot_prefect import DeltaLake

    folder = f"delta-{uuid.uuid4().hex[:10]}"
    if backend == "delta-s3":
        endpoint = request.getfixturevalue("moto_s3")
        bucket = request.getfixturevalue("contract_s3_bucket")
        return DeltaLake(s3_bucket=s3_bucket_block(endpoint, bucket), path=folder)
    assert backend == "delta-local", backend
    return DeltaLake(path=str(tmp_path / folder))
