"""``DeltaLake``: tables as Delta Lake tables on a local folder, S3 or GCS.

A Delta table is a folder of Parquet files and a transaction log (``_delta_log/``)
that Spark, Trino, DuckDB, Polars, Snowflake and BigQuery read as a table. Every
write is one Delta transaction (delta-rs): readers see the version before it or the
version after it, never a part. Each committed write makes a new table version,
and any version can be read again (:meth:`DeltaLake.read_table_arrow` with
``version=``), which is what prediction lineage pins.

Queries run in DuckDB over the tables they name, each at one version: a local
table's data files read by DuckDB's own Parquet reader, a remote one as an Arrow
dataset.

The block holds the configuration and the public methods; the work is done by the
modules of :mod:`knot_prefect.blocks.warehouses.delta`, one concept each.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from knot_prefect.blocks.warehouses.base import Evolve, WriteMode
from knot_prefect.blocks.warehouses.delta import migrate, query, staging, writes
from knot_prefect.blocks.warehouses.delta.location import DeltaLocation, gcs_options, s3_options
from knot_prefect.blocks.warehouses.delta.tables import (
    delta_errors,
    table_names,
    table_or_raise,
)
from knot_prefect.blocks.warehouses.delta.types import to_delta_types
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake.block import (
    GcsStorage,
    S3Storage,
)
from knot_prefect.blocks.warehouses.lake.query import versioned_query
from knot_prefect.blocks.warehouses.lake.versioned import VersionedLake, versioned_lake_example

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.delta.migrate import Migration
    from knot_prefect.blocks.warehouses.lake.staging import StagedCommit
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

__all__ = ["DeltaLake"]

if importlib.util.find_spec("deltalake") is None:  # hides the block without its extra
    raise ModuleNotFoundError(
        "DeltaLake needs delta-rs: pip install 'knot-prefect[delta]'", name="deltalake"
    )

CODE_EXAMPLE = versioned_lake_example("DeltaLake")


class DeltaLake(GcsStorage, S3Storage, VersionedLake):
    """Tables as Delta Lake tables on a local folder, on S3 or on GCS.

    Every write (``append``, ``replace``, ``upsert`` as a Delta MERGE, ``fail``) and
    every :meth:`commit_staged` is one Delta transaction. Concurrent writers are
    safe: delta-rs commits a new version with a put-if-absent (an atomic create on a
    local folder, S3's and GCS's conditional writes); a commit that conflicts with
    another writer's raises :class:`ConcurrentWriteError`, nothing of it is
    committed, and retrying is safe (the I/O tasks retry it).

    Examples:
        Write and query a table on a local folder:

        >>> import tempfile, pandas as pd
        >>> lake = DeltaLake(path=tempfile.mkdtemp())
        >>> lake.write(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.9]}), "scores").rows
        2
        >>> lake.read("SELECT id FROM scores WHERE score > :s", {"s": 0.6})["id"].tolist()
        [2]
        >>> lake.table_version("scores")
        0
    """

    _block_type_name = "Delta Lake"
    _description = (
        "Tables as Delta Lake tables (delta-rs) on a local folder, on S3 or on GCS: every "
        "write one Delta transaction, every version readable again, queried with DuckDB."
    )
    _code_example = CODE_EXAMPLE

    threads: int | None = Field(default=None, gt=0)
    """DuckDB threads per query; empty uses every core (set 1 on Dask workers that run one
    task per core)."""


    _home_folder = "delta"
    _label = "Delta lake"

    # -- location ------------------------------------------------------------------
    def table_uri(self, name: str) -> str:
        """The URI of a table, as Spark, DuckDB or Polars open it (``s3://...``)."""
        return self._location(connect=False).uri(TableName.parse(name))

    def _location(self, connect: bool = True) -> DeltaLocation:
        storage = self._lake_storage(connect, threads=self.threads)
        if not connect:
            return DeltaLocation(storage)
        if self.s3_bucket is not None:
            return DeltaLocation(storage, s3_options(self.s3_bucket))
        if self.gcs_bucket is not None:
            return DeltaLocation(storage, gcs_options(self.gcs_bucket))
        return DeltaLocation(storage)

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
        with delta_errors(location, str(table)):
            return table_or_raise(location, table, version).to_pyarrow_dataset()

    def table_version(self, name: str) -> int:
        """The table's current version (0 after the first write, +1 per commit)."""
        return int(table_or_raise(self._location(), TableName.parse(name)).version())

    # -- writes --------------------------------------------------------------------
    def _format_types(self, data: pa.Table, table: str) -> pa.Table:
        """The column types Delta holds (see ``delta.types``)."""
        return to_delta_types(data, table)

    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        return writes.write_table(self._location(), data, table, mode, keys, evolve)

    # -- staged writes -------------------------------------------------------------
    def _publish_staged(self, commit: StagedCommit, evolve: Evolve, mode: WriteMode) -> None:
        staging.publish(self._location(), commit, evolve, mode)

    # -- maintenance ---------------------------------------------------------------
    def vacuum(self, name: str, retain_hours: float = 168.0) -> list[str]:
        """Delete data files no version younger than ``retain_hours`` uses.

        Replaced and merged rows, and staged parts never committed, leave files
        behind; versions older than ``retain_hours`` can no longer be read after.

        Returns:
            The files deleted, relative to the table.
        """
        location = self._location()
        with delta_errors(location, name):
            delta_table = table_or_raise(location, TableName.parse(name))
            return list(delta_table.vacuum(retention_hours=int(retain_hours), dry_run=False,
                                           enforce_retention_duration=False))

    def optimize(self, name: str) -> dict[str, Any]:
        """Compact the table's small files into larger ones (a new version, same rows).

        Returns:
            delta-rs's metrics (files added and removed, among others).
        """
        location = self._location()
        with delta_errors(location, name):
            delta_table = table_or_raise(location, TableName.parse(name))
            return dict(delta_table.optimize.compact())

    def migrate_parquet_table(self, source: ParquetLake, table: str,
                              target_table: str | None = None,
                              overwrite: bool = False) -> Migration:
        """Write the live rows of a ParquetLake table as a Delta table, in one commit.

        Only the files the table's manifest lists are read; the Parquet table is left
        as it was (see :mod:`knot_prefect.blocks.warehouses.delta.migrate`).

        Args:
            source: The Parquet lake holding the table.
            table: The table, ``"table"`` or ``"schema.table"``.
            target_table: Its name in this lake (default: ``table``).
            overwrite: Replace an existing Delta table of that name (a new version of
                it); without it an existing table is refused.

        Returns:
            What was written: rows, live files read, the Delta version.

        Raises:
            TableNotFoundError: When the Parquet table does not exist.
            TableExistsError: When the Delta table exists and ``overwrite`` is False.
            SchemaMismatchError: For a column Delta cannot hold (a time of day).

        Examples:
            >>> import tempfile, pandas as pd
            >>> from knot_prefect import ParquetLake
            >>> parquet = ParquetLake(path=tempfile.mkdtemp())
            >>> _ = parquet.write(pd.DataFrame({"id": [1, 2]}), "ids")
            >>> _ = parquet.write(pd.DataFrame({"id": [2, 3]}), "ids", mode="upsert", keys=["id"])
            >>> delta = DeltaLake(path=tempfile.mkdtemp())
            >>> delta.migrate_parquet_table(parquet, "ids").rows, delta.table_version("ids")
            (3, 0)
        """
        return migrate.migrate_parquet_table(
            source._storage(), TableName.parse(table), self._location(),
            TableName.parse(target_table or table), overwrite)

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) is a Delta table."""
        from deltalake import DeltaTable

        location = self._location()
        with delta_errors(location, name):
            return bool(DeltaTable.is_deltatable(location.uri(TableName.parse(name)),
                                                 storage_options=location.options))

    def list_tables(self) -> list[str]:
        """The lake's tables, as ``table`` or ``schema.table``, sorted."""
        return table_names(self._location())

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Remove a table: its log first (it stops being a table), then its files.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            missing_ok: Do nothing, instead of raising, when the table does not exist.
        """
        table = TableName.parse(name)
        location = self._location()
        if not self.table_exists(name):
            if missing_ok:
                return
            table_or_raise(location, table)
        storage = location.storage
        storage.fs.rm(storage.table_path(table, "_delta_log"), recursive=True)
        storage.fs.rm(storage.table_dir(table), recursive=True)
