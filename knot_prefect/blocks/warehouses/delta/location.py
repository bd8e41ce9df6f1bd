"""Where a Delta lake lives: table URIs and the credentials delta-rs needs.

delta-rs reads and commits through its own object store, configured by
``storage_options``; staged parts are written as Parquet files through the fsspec
filesystem of :mod:`knot_prefect.blocks.warehouses.lake.storage`. Both are built from
the same nested prefect-aws or prefect-gcp block, so credentials live in one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect_aws import S3Bucket
    from prefect_gcp import GcsBucket

    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage


@dataclasses.dataclass(frozen=True)
class DeltaLocation:
    """A Delta lake's root, its delta-rs storage options and its staging filesystem.

    Attributes:
        storage: The root and fsspec filesystem (staged data files, listing tables).
        options: delta-rs ``storage_options`` (secrets included: never log them).
    """

    storage: LakeStorage
    options: dict[str, str] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def location(self) -> str:
        """The lake's root as a URL (``s3://...``, ``gs://...`` or a local path)."""
        return self.storage.location

    def uri(self, table: TableName) -> str:
        """The table's URI for delta-rs: ``root/[schema/]table``."""
        prefix = {"s3": "s3://", "gcs": "gs://"}.get(self.storage.kind, "")
        return prefix + self.storage.table_dir(table)


def s3_options(bucket: S3Bucket) -> dict[str, str]:
    """delta-rs storage options with the S3 bucket block's credentials and endpoint.

    delta-rs commits with S3's conditional writes (``If-None-Match``), so concurrent
    writers need no lock table.
    """
    credentials = bucket.credentials
    session = credentials.get_boto3_session()
    options: dict[str, str] = {}
    resolved = session.get_credentials()
    if resolved is not None:
        frozen = resolved.get_frozen_credentials()
        options["AWS_ACCESS_KEY_ID"] = frozen.access_key
        options["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
        if frozen.token:
            options["AWS_SESSION_TOKEN"] = frozen.token
    options["AWS_REGION"] = session.region_name or "us-east-1"
    parameters = getattr(credentials, "aws_client_parameters", None)
    endpoint = getattr(parameters, "endpoint_url", None)
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def gcs_options(bucket: GcsBucket) -> dict[str, str]:
    """delta-rs storage options with the GCS bucket block's service account.

    With ``STORAGE_EMULATOR_HOST`` set (a local GCS emulator), requests go to it
    unauthenticated, as with Google's own clients. delta-rs speaks GCS's XML API
    there (listing with ``list-type=2``), which an emulator must serve.
    """
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        key = {"gcs_base_url": emulator, "disable_oauth": True, "client_email": "",
               "private_key": "", "private_key_id": ""}
        return {"google_service_account_key": json.dumps(key), "allow_http": "true"}
    options: dict[str, str] = {}
    info = bucket.gcp_credentials.service_account_info
    if info is not None:
        options["google_service_account_key"] = json.dumps(info.get_secret_value())
    elif bucket.gcp_credentials.service_account_file:
        options["google_service_account"] = str(bucket.gcp_credentials.service_account_file)
    return options
