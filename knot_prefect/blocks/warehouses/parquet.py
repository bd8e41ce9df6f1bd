"""``ParquetLake``: tables as Parquet datasets on a local folder, S3 or GCS.

Each table is a folder holding Parquet data files and one manifest object,
``_manifest.json``, that lists the table's live files. Readers read only the files
the manifest lists, so a write becomes visible in one step: new data files are
written first, then the manifest is switched with a single compare-and-swap object
write. A writer that fails, is killed or loses the switch to another writer leaves
the table exactly as it was; its orphaned files are removed later by
:meth:`ParquetLake.vacuum`.

Queries run in DuckDB over the lake: every table a query names is registered as a
view over its manifest's files, so ``read("SELECT ... FROM events WHERE day = :d")``
works the same as on a database.

The block holds the configuration and the public methods; the work is done by the
modules of :mod:`knot_prefect.blocks.warehouses.lake`, one concept each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from knot_prefect.blocks.fields import loaded_block_example
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    Evolve,
    StagedPart,
    WriteMode,
)
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake import files, manifest, query, schemas, staging, writes
from knot_prefect.blocks.warehouses.lake.block import (
    GcsStorage,
    LakeWarehouse,
    S3Storage,
    read_columns,
)
from knot_prefect.blocks.warehouses.lake.manifest import MANIFEST_NAME
from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.lake.staging import StagedCommit

__all__ = ["MANIFEST_NAME", "ConcurrentWriteError", "ParquetLake", "StagedPart"]

# How a saved block is used (the Prefect UI shows it on the block's page).
CODE_EXAMPLE = loaded_block_example("ParquetLake", "lake", """
lake.write(frame, "features.daily", mode="replace")
recent = lake.read("SELECT * FROM features.daily WHERE day >= :day", {"day": "2024-01-01"})
""")


class ParquetLake(GcsStorage, S3Storage, LakeWarehouse):
    """Tables as Parquet datasets on a local folder, on S3 or on GCS.

    Writes are atomic through a manifest switch: data files are written first, then
    the table's ``_manifest.json`` is replaced in one object write. Queries run in
    DuckDB over the tables they name.

    Concurrent writers: the manifest switch is a compare-and-swap (a lock file on a
    local folder, a conditional PUT on S3, ``ifGenerationMatch`` on GCS). When
    another writer switched the table first, an ``append``, ``upsert``, ``fail`` or
    :meth:`commit_staged` raises :class:`ConcurrentWriteError`: nothing of it is
    written and retrying is safe (the I/O tasks retry it). A ``replace`` always
    lands: it keeps nothing of the table, so it cannot lose another write's rows.

    Examples:
        Write and query a table on a local folder:

        >>> import tempfile, pandas as pd
        >>> lake = ParquetLake(path=tempfile.mkdtemp())
        >>> lake.write(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.9]}), "scores").rows
        2
        >>> lake.read("SELECT id FROM scores WHERE score > :s", {"s": 0.6})["id"].tolist()
        [2]
    """

    _block_type_name = "Parquet Lake"
    _description = (
        "Tables as Parquet datasets on a local folder, on S3 or on GCS, written "
        "atomically through a manifest switch and queried with DuckDB."
    )
    _code_example = CODE_EXAMPLE

    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    """Compression codec of the Parquet files written."""
    rows_per_file: int = Field(default=1_000_000, gt=0)
    """Most rows written to one Parquet file; larger writes make several files."""
    threads: int | None = Field(default=None, gt=0)
    """DuckDB threads per query and upsert; empty uses every core (set 1 on Dask workers
    that run one task per core)."""
    memory_limit: str = "1GB"
    """Most memory DuckDB may use for an upsert's anti-join before it spills to a temporary
    folder, e.g. '1GB' or '512MB'."""

    _home_folder = "lake"
    _label = "Parquet lake"

    # -- storage -------------------------------------------------------------------
    def _storage(self, connect: bool = True) -> LakeStorage:
        """The lake's root and filesystem, with the block's file and DuckDB settings."""
        return self._lake_storage(
            connect,
            compression=None if self.compression == "none" else self.compression,
            rows_per_file=self.rows_per_file,
            threads=self.threads,
            memory_limit=self.memory_limit,
        )

    # -- reads ---------------------------------------------------------------------
    def _query(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyRelation]:
        return query.query(self._storage(), sql, params)

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table, or some of its columns, as a pyarrow Table."""
        table = TableName.parse(name)
        storage = self._storage()
        dataset = files.dataset(storage, table, manifest.manifest_or_raise(storage, table))
        return read_columns(dataset, table, columns)

    # -- writes --------------------------------------------------------------------
    def _prepare_frame(self, data: pa.Table, table: str) -> pa.Table:
        """``prepare_frame``, keeping dictionary columns encoded (see ``schemas.prepare``)."""
        return schemas.prepare(data, table)

    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        return writes.write_table(self._storage(), data, table, mode, keys, evolve)

    # -- staged writes ---------------------------------------------------------------
    def _files(self) -> LakeStorage:
        return self._storage()

    def _publish_staged(self, commit: StagedCommit, evolve: Evolve, mode: WriteMode) -> None:
        staging.publish(self._storage(), commit, evolve, mode)

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) has a manifest."""
        return manifest.read_manifest(self._storage(), TableName.parse(name)) is not None

    def list_tables(self) -> list[str]:
        """The lake's tables, as ``table`` or ``schema.table``, sorted."""
        return manifest.table_names(self._storage())

    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Remove a table: its manifest first (atomic), then its files.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            missing_ok: Do nothing, instead of raising, when the table does not exist.
        """
        table = TableName.parse(name)
        storage = self._storage()
        if manifest.read_manifest(storage, table) is None:
            if missing_ok:
                return
            manifest.manifest_or_raise(storage, table)
        files.remove_table(storage, table)

    def vacuum(self, name: str, retain_seconds: float = 3600.0) -> int:
        """Delete data files the manifest no longer lists.

        Replaced, upserted and abandoned writes leave files behind; they are kept for
        ``retain_seconds`` so that readers still holding the older manifest finish.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            retain_seconds: Keep unlisted files younger than this.

        Returns:
            The number of files deleted.
        """
        table = TableName.parse(name)
        storage = self._storage()
        live = manifest.manifest_or_raise(storage, table)
        return files.remove_unlisted(storage, table, live, retain_seconds)
