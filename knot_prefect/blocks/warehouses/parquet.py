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
    StagedPart,
    WriteMode,
)
from knot_prefect.blocks.warehouses.identifiers import TableName
from knot_prefect.blocks.warehouses.lake import files, manifest, query, schemas, staging, writes
from knot_prefect.blocks.warehouses.lake.block import LakeWarehouse, read_columns
from knot_prefect.blocks.warehouses.lake.manifest import MANIFEST_NAME
from knot_prefect.blocks.warehouses.lake.storage import LakeStorage

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["MANIFEST_NAME", "ConcurrentWriteError", "ParquetLake", "StagedPart"]

# How a saved block is used (the Prefect UI shows it on the block's page).
CODE_EXAMPLE = loaded_block_example("ParquetLake", "lake", """
lake.write(frame, "features.daily", mode="replace")
recent = lake.read("SELECT * FROM features.daily WHERE day >= :day", {"day": "2024-01-01"})
""")


class ParquetLake(LakeWarehouse):
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

    compression: Literal["zstd", "snappy", "gzip", "none"] = Field(
        default="zstd", description="Compression codec of the Parquet files written."
    )
    rows_per_file: int = Field(
        default=1_000_000,
        gt=0,
        description="Most rows written to one Parquet file; larger writes make several files.",
    )
    threads: int | None = Field(
        default=None,
        gt=0,
        description=(
            "DuckDB threads per query and upsert; empty uses every core (set 1 on Dask "
            "workers that run one task per core)."
        ),
    )
    memory_limit: str = Field(
        default="1GB",
        description=(
            "Most memory DuckDB may use for an upsert's anti-join before it spills to "
            "a temporary folder, e.g. '1GB' or '512MB'."
        ),
    )

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
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: bool
    ) -> int:
        return writes.write_table(self._storage(), data, table, mode, keys, evolve)

    # -- staged writes ---------------------------------------------------------------
    def stage(
        self,
        data: Any,
        table: str,
        stage_id: str,
        part: int = 0,
        unique_keys: Sequence[str] | None = None,
    ) -> StagedPart:
        """Write rows as data files of ``table`` that no reader sees until committed.

        Many processes may stage parts of one write at the same time (each Dask worker
        its own part); :meth:`commit_staged` then publishes all of them in one manifest
        switch. Staging the same ``(stage_id, part)`` again (a retried task) overwrites
        the part's files, so nothing is staged twice. Parts never committed are
        removed by :meth:`discard_staged` or, later, :meth:`vacuum`.

        Args:
            data: A pandas, polars or pyarrow frame, or an iterable of them (streamed
                to the files one at a time).
            table: ``"table"`` or ``"schema.table"``.
            stage_id: From :meth:`new_stage_id`, the same for every part of a write.
            part: This part's number, distinct within the staged write.
            unique_keys: Check, after writing, that these columns are never null and
                unique together within the part (out of core); when every part is
                checked and the parts hold disjoint keys, the commit can skip its
                own check (``check_unique=False``).

        Returns:
            The staged part, to pass to :meth:`commit_staged`.

        Raises:
            SchemaMismatchError: When later frames of ``data`` do not convert to the
                first one's column types, or ``unique_keys`` are null or repeat (the
                part's files are then removed).

        Examples:
            >>> import tempfile, pandas as pd
            >>> lake = ParquetLake(path=tempfile.mkdtemp())
            >>> stage = lake.new_stage_id()
            >>> part = lake.stage(pd.DataFrame({"id": [1, 2], "p": [0.1, 0.2]}), "scores", stage)
            >>> lake.table_exists("scores")
            False
            >>> lake.commit_staged("scores", [part], keys=["id"])
            2
            >>> lake.read("SELECT count(*) AS n FROM scores")["n"].tolist()
            [2]
        """
        return staging.stage(self._storage(), data, table, stage_id, part, unique_keys)

    def commit_staged(self, table: str, parts: Sequence[StagedPart], keys: Sequence[str] = (),
                      evolve: bool = False, check_unique: bool = True,
                      mode: WriteMode = "upsert") -> int:
        """Publish every staged part into ``table`` in one atomic manifest switch.

        ``upsert`` (the default) replaces the table's rows whose keys the parts hold
        and keeps the others: DuckDB anti-joins the table's files with the staged keys
        out of core (within ``memory_limit``). ``append`` adds the parts to the table's
        files, ``replace`` makes the table of the parts alone, and ``fail`` refuses an
        existing table. The staged files themselves become table files without being
        rewritten. Until the switch nothing is visible; a failure leaves the table as
        it was (the staged files stay until :meth:`discard_staged`).

        Args:
            table: ``"table"`` or ``"schema.table"``; created when missing.
            parts: What :meth:`stage` returned, for every part of the write.
            keys: Columns identifying a row (required by ``upsert``).
            evolve: Allow new columns to be added to an existing table.
            check_unique: Check that no key is staged twice (skip only when the parts
                are known to hold disjoint, unique keys).
            mode: ``upsert``, ``append``, ``replace`` or ``fail``, as in :meth:`write`.

        Returns:
            Rows published.

        Raises:
            SchemaMismatchError: For a null or repeated key (naming an example), new
                columns without ``evolve``, or types the table cannot hold.
            TableExistsError: For ``mode='fail'`` when the table exists.
            ConcurrentWriteError: When another writer switched the table meanwhile
                (nothing is committed; committing again is safe).
        """
        return staging.commit_staged(self._storage(), table, parts, keys, evolve, check_unique,
                                     mode)

    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Remove the files of staged parts that will not be committed."""
        staging.discard_staged(self._storage(), parts)

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
