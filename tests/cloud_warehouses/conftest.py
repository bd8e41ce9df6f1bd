"""Fixtures for the Parquet lake, Snowflake and BigQuery warehouse tests."""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.blocks.warehouses.parquet import ParquetLake


@cache
def rsa_private_key_pem() -> str:
    """A throwaway RSA key: Google's credential classes need a parseable one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_info(
    project: str, token_uri: str = "http://127.0.0.1:9/token"
) -> dict[str, str]:
    """A syntactically valid service account for a project that does not exist."""
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "test-key",
        "private_key": rsa_private_key_pem(),
        "client_email": f"knot-tests@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


S3_BUCKET = "knot-lake-tests"
S3_SECRET = "knot-test-secret-value"  # moto accepts any secret
GCS_BUCKET = "knot-lake-tests"


@pytest.fixture(scope="session")
def s3_bucket_name(moto_s3: str) -> str:
    import boto3

    client = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    client.create_bucket(Bucket=S3_BUCKET)
    return S3_BUCKET


@pytest.fixture(scope="session")
def gcs_bucket_name(gcs_emulator: str) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]
    client.create_bucket(GCS_BUCKET)
    return GCS_BUCKET


def make_s3_lake(endpoint: str, bucket: str, folder: str, **fields: Any) -> ParquetLake:
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    return ParquetLake(
        s3_bucket=S3Bucket(bucket_name=bucket, credentials=credentials), path=folder, **fields
    )


def make_gcs_lake(bucket: str, folder: str, **fields: Any) -> ParquetLake:
    from prefect_gcp import GcpCredentials, GcsBucket

    credentials = GcpCredentials(
        service_account_info=service_account_info("knot-tests"), project="knot-tests"
    )
    return ParquetLake(gcs_bucket=GcsBucket(bucket=bucket, gcp_credentials=credentials),
                       path=folder, **fields)


KINDS = ["local", "s3", "gcs"]


@pytest.fixture(params=KINDS)
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> ParquetLake:
    """A fresh, empty lake on a local folder, on moto's S3 and on the GCS emulator."""
    folder = f"lake-{uuid.uuid4().hex[:10]}"
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_s3")
        return make_s3_lake(endpoint, request.getfixturevalue("s3_bucket_name"), folder)
    if request.param == "gcs":
        return make_gcs_lake(request.getfixturevalue("gcs_bucket_name"), folder)
    return ParquetLake(path=str(tmp_path / folder))
