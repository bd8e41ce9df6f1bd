"""Where a Parquet lake lives: a local folder, an S3 bucket or a GCS bucket.

A :class:`LakeStorage` is what the other lake modules work with: the lake's root,
an fsspec filesystem authenticated by the block's nested storage block, and the
block's settings for files and DuckDB.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from knot_prefect.blocks.warehouses.identifiers import TableName

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from prefect_aws import S3Bucket
    from prefect_gcp import GcsBucket

StorageKind = Literal["local", "s3", "gcs"]


@dataclasses.dataclass(frozen=True)
class LakeStorage:
    """A lake's root and filesystem, and the settings its files and queries use.

    Attributes:
        kind: ``local``, ``s3`` or ``gcs``.
        root: The lake's root: an absolute local path, or ``bucket/folder``.
        fs: The filesystem holding the root.
        compression: Parquet codec of written files (None for none).
        rows_per_file: Most rows in one data file.
        threads: DuckDB threads (None for every core).
        memory_limit: DuckDB's memory limit before an upsert spills.
        label: The lake's kind as messages name it (``Parquet lake``, ``Delta lake``).
    """

    kind: StorageKind
    root: str
    fs: AbstractFileSystem
    compression: str | None = "zstd"
    rows_per_file: int = 1_000_000
    threads: int | None = None
    memory_limit: str = "1GB"
    label: str = "Parquet lake"

    @property
    def location(self) -> str:
        """The lake's root as a URL (``s3://...``, ``gs://...`` or a local path)."""
        return {"s3": "s3://", "gcs": "gs://"}.get(self.kind, "") + self.root

    @property
    def is_local(self) -> bool:
        """Whether the lake is a local folder (Arrow's native I/O, atomic renames)."""
        return self.kind == "local"

    @property
    def arrow_filesystem(self) -> AbstractFileSystem | None:
        """The filesystem for pyarrow datasets: None (native) for local files."""
        return None if self.is_local else self.fs

    def table_dir(self, table: TableName) -> str:
        """The folder of ``table``: ``root/[schema/]table``."""
        return "/".join([self.root, *([table.schema] if table.schema else []), table.table])

    def table_path(self, table: TableName, relative: str) -> str:
        """The full path of ``relative`` (a data file or the manifest) in ``table``."""
        return f"{self.table_dir(table)}/{relative}"


def local_root(path: str, default: Path) -> str:
    """The absolute local folder of a lake (``default`` when ``path`` is empty)."""
    return str((Path(path).expanduser() if path else default).absolute())


def bucket_root(bucket: str, *folders: str) -> str:
    """``bucket/folder/...`` without empty parts or stray slashes."""
    parts = [bucket, *folders]
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def local_filesystem() -> AbstractFileSystem:
    """The local filesystem."""
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem()


def s3_filesystem(bucket: S3Bucket) -> AbstractFileSystem:
    """An s3fs filesystem using the credentials and client parameters of ``bucket``."""
    import s3fs

    credentials = bucket.credentials
    session = credentials.get_boto3_session()
    resolved = session.get_credentials()
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if resolved is not None:
        frozen = resolved.get_frozen_credentials()
        options.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    client_kwargs: dict[str, Any] = {}
    if session.region_name:
        client_kwargs["region_name"] = session.region_name
    parameters = getattr(credentials, "aws_client_parameters", None)
    if parameters is not None:
        if parameters.endpoint_url:
            options["endpoint_url"] = parameters.endpoint_url
        if parameters.verify is not None and parameters.verify is not True:
            client_kwargs["verify"] = parameters.verify
        if parameters.use_ssl is False:
            options["use_ssl"] = False
    options["client_kwargs"] = client_kwargs
    return s3fs.S3FileSystem(**options)


def gcs_filesystem(bucket: GcsBucket) -> AbstractFileSystem:
    """A gcsfs filesystem using the credentials of ``bucket``.

    With ``STORAGE_EMULATOR_HOST`` set (a local GCS emulator) requests are anonymous,
    as with Google's own clients.
    """
    import gcsfs
    import gcsfs.core

    credentials = bucket.gcp_credentials
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # Emulators speak only the JSON API: use the plain filesystem, which does not
        # probe for zonal/hierarchical buckets over gRPC.
        return gcsfs.core.GCSFileSystem(project=credentials.project, token="anon", **options)
    options["token"] = credentials.get_credentials_from_service_account()
    return gcsfs.GCSFileSystem(project=credentials.project, **options)


class FormatLocation(Protocol):
    """Where a table format's lake lives: its storage, and what the format adds."""

    @property
    def storage(self) -> LakeStorage:
        """The lake's root and filesystem."""
