"""``IcebergTable``: tables as Apache Iceberg tables, on a local folder or S3.

An Iceberg table is a folder of Parquet data files and metadata files; a catalog
holds each table's current metadata, and a commit swaps it atomically. Spark,
Trino, Flink, Snowflake, BigQuery, DuckDB and Polars read the tables through the
same catalog. Every write is one snapshot: readers see the snapshot before it or
the one after it, never a part. Any snapshot can be read again
(:meth:`IcebergTable.read_table_arrow` with ``version=``), which is what prediction
lineage pins.

The catalog is a SQLite file in the lake's folder by default; a team shares a
PostgreSQL database (``catalog_uri``) or a REST catalog. Queries run in DuckDB over
the tables they name, each registered as an Arrow dataset at one snapshot.

The block holds the configuration and the public methods; the work is done by the
modules of :mod:`knot_prefect.blocks.warehouses.iceberg`, one concept each.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, model_validator

from knot_prefect.blocks.warehouses.base import Evolve, WarehouseError, WriteMode
from knot_prefect.blocks.warehouses.iceberg import query, staging, writes
from knot_prefect.blocks.warehouses.iceberg.catalog import (
    CATALOG_FILE,
    IcebergLocation,
    catalog_uri_parts,
    iceberg_errors,
    open_table,
    table_names,
    table_or_raise,
)
from knot_prefect.blocks.warehouses.iceberg.types import to_iceberg_types
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake.block import S3Storage
from knot_prefect.blocks.warehouses.lake.query import versioned_query
from knot_prefect.blocks.warehouses.lake.versioned import VersionedLake, versioned_lake_example

if TYPE_CHECKING:
    from typing import Self

    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.lake.staging import StagedCommit

__all__ = ["IcebergTable"]

if importlib.util.find_spec("pyiceberg") is None:  # hides the block without its extra
    raise ModuleNotFoundError(
        "IcebergTable needs pyiceberg: pip install 'knot-prefect[iceberg]'", name="pyiceberg"
    )


CODE_EXAMPLE = versioned_lake_example("IcebergTable")


class IcebergTable(S3Storage, VersionedLake):
    """Tables as Apache Iceberg tables on a local folder or on S3, in a SQL or REST catalog.

    Every write (``append``, ``replace``, ``upsert``, ``fail``) and every
    :meth:`commit_staged` is one Iceberg snapshot. Concurrent writers are safe: the
    catalog swaps a table's metadata only if no other writer committed since this
    write began; pyiceberg retries what it can reconcile, and a write that
    conflicts (an upsert or replace of rows another writer changed) raises
    :class:`ConcurrentWriteError`, nothing of it committed, and retrying is safe (the
    I/O tasks retry it).

    Examples:
        Write and query a table on a local folder (catalog: a SQLite file there):

        >>> import tempfile, pandas as pd
        >>> lake = IcebergTable(path=tempfile.mkdtemp())
        >>> lake.write(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.9]}), "scores").rows
        2
        >>> lake.read("SELECT id FROM scores WHERE score > :s", {"s": 0.6})["id"].tolist()
        [2]
        >>> lake.table_version("scores") > 0
        True
    """

    _block_type_name = "Iceberg Table"
    _description = (
        "Tables as Apache Iceberg tables (pyiceberg) on a local folder or on S3, in a SQL "
        "(SQLite, PostgreSQL) or REST catalog: every write one snapshot, every snapshot "
        "readable again, queried with DuckDB."
    )
    _code_example = CODE_EXAMPLE

    catalog_uri: SecretStr | None = Field(
        default=None,
        description=(
            "The catalog: empty for a SQLite file in the lake's folder; a SQLAlchemy URL "
            "for a shared SQL catalog (postgresql+psycopg://user:password@host/db); or "
            "the http(s):// URL of a REST catalog. Secret: never shown in logs or errors."
        ),
    )
    catalog_credential: SecretStr | None = Field(
        default=None,
        description="A REST catalog's OAuth credential ('client_id:client_secret').",
    )
    catalog_name: str = Field(
        default="knot",
        min_length=1,
        description="The catalog's name: lakes sharing one catalog database use distinct names.",
    )
    threads: int | None = Field(default=None, gt=0)
    """DuckDB threads per query; empty uses every core (set 1 on Dask workers that run one
    task per core)."""

    _home_folder = "iceberg"
    _label = "lake of Iceberg tables"

    @model_validator(mode="after")
    def _supported_storage(self) -> Self:
        if self.s3_bucket is not None and self.catalog_uri is None:
            raise ValueError(
                "An IcebergTable on S3 needs a shared catalog: set catalog_uri to a "
                "PostgreSQL URL or a REST catalog (a SQLite file cannot live in a bucket)."
            )
        return self

    # -- location ------------------------------------------------------------------
    def table_uri(self, name: str) -> str:
        """The URI of a table's folder (``s3://...`` or a local path)."""
        return self._location(connect=False).table_uri(TableName.parse(name))

    def _location(self, connect: bool = True) -> IcebergLocation:
        storage = self._lake_storage(connect, threads=self.threads)
        properties: dict[str, str] = {}
        secrets: list[str] = []
        uri = self.catalog_uri.get_secret_value() if self.catalog_uri else ""
        if not uri:
            uri = f"sqlite:///{storage.root}/{CATALOG_FILE}"
            if connect:
                storage.fs.makedirs(storage.root, exist_ok=True)
        else:
            secrets += catalog_uri_parts(uri)
        if self.catalog_credential is not None:
            properties["credential"] = self.catalog_credential.get_secret_value()
            secrets.append(properties["credential"])
        if self.s3_bucket is not None and connect:
            from knot_prefect.blocks.warehouses.delta.location import s3_options

            options = s3_options(self.s3_bucket)
            for key, option in (("s3.access-key-id", "AWS_ACCESS_KEY_ID"),
                                ("s3.secret-access-key", "AWS_SECRET_ACCESS_KEY"),
                                ("s3.session-token", "AWS_SESSION_TOKEN"),
                                ("s3.region", "AWS_REGION"),
                                ("s3.endpoint", "AWS_ENDPOINT_URL")):
                if options.get(option):
                    properties[key] = options[option]
            secrets += [options.get("AWS_SECRET_ACCESS_KEY", ""),
                        options.get("AWS_SESSION_TOKEN", "")]
        return IcebergLocation(storage, uri, self.catalog_name,
                               tuple(sorted(properties.items())),
                               tuple(secret for secret in secrets if secret))

    # -- reads ---------------------------------------------------------------------
    def _versioned_query(
        self, sql: str, params: Mapping[str, Any] | None, versions: Mapping[str, int],
        seen: dict[str, int] | None,
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyRelation]:
        location = self._location()
        return versioned_query(location.storage, sql, params, versions, seen,
                               functools.partial(query.register_at, location))

    def _dataset_at(self, table: TableName, version: int | None) -> pads.Dataset:
        location = self._location()
        iceberg_table = table_or_raise(location, table)
        with iceberg_errors(location, str(table)):
            return query.snapshot_dataset(location, iceberg_table, version)[0]

    def table_version(self, name: str) -> int:
        """The id of the table's current snapshot (what lineage records and pins).

        Raises:
            TableNotFoundError: When the table does not exist.
        """
        snapshot = table_or_raise(self._location(), TableName.parse(name)).current_snapshot()
        if snapshot is None:
            raise WarehouseError(f"Table {name} has no snapshot yet: write rows to it first.")
        return int(snapshot.snapshot_id)

    # -- writes --------------------------------------------------------------------
    def _format_types(self, data: pa.Table, table: str) -> pa.Table:
        """The column types Iceberg holds (see ``iceberg.types``)."""
        return to_iceberg_types(data, table)

    def _staged_types(self, data: pa.Table, table: str) -> pa.Table:
        """Iceberg's types; an all-null column stays untyped until the commit unifies parts."""
        return to_iceberg_types(data, table, keep_null=True)

    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        return writes.write_table(self._location(), data, table, mode, keys, evolve)

    # -- staged writes -------------------------------------------------------------
    def _publish_staged(self, commit: StagedCommit, evolve: Evolve, mode: WriteMode) -> None:
        staging.publish(self._location(), commit, evolve, mode)

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether the catalog holds ``name`` (``"table"`` or ``"schema.table"``)."""
        return open_table(self._location(), TableName.parse(name)) is not None

    def list_tables(self) -> list[str]:
        """The catalog's tables, as ``table`` or ``schema.table``, sorted."""
        return table_names(self._location())

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Remove a table: from the catalog first (it stops being a table), then its files.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            missing_ok: Do nothing, instead of raising, when the table does not exist.
        """
        table = TableName.parse(name)
        location = self._location()
        if open_table(location, table) is None:
            if missing_ok:
                return
            table_or_raise(location, table)
        with iceberg_errors(location, name):
            location.catalog().drop_table(location.identifier(table))
        storage = location.storage
        if storage.fs.exists(storage.table_dir(table)):
            storage.fs.rm(storage.table_dir(table), recursive=True)
