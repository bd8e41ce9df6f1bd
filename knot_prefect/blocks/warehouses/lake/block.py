"""What every lake block shares: its storage fields, reads and staged writes.

:class:`ParquetLake`, :class:`DeltaLake` and :class:`IcebergTable` hold their
tables as files in the same places, configured the same way; only the table
format differs. Each storage is a mixin (:class:`S3Storage`, :class:`GcsStorage`)
that a block lists only when its format supports it.
"""

from __future__ import annotations

import contextlib
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel, Field, model_validator

from knot_prefect.blocks.optional import optional_block
from knot_prefect.blocks.warehouses._common import check_columns_exist
from knot_prefect.blocks.warehouses.base import (
    Evolve,
    StagedPart,
    Warehouse,
    WarehouseError,
    WriteMode,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, validate_identifier
from knot_prefect.blocks.warehouses.lake.storage import (
    LakeStorage,
    StorageKind,
    bucket_root,
    gcs_filesystem,
    local_filesystem,
    local_root,
    s3_filesystem,
)
from knot_prefect.settings import get_settings

if TYPE_CHECKING:
    from typing import Self

    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads
    from fsspec import AbstractFileSystem
    from prefect_aws import S3Bucket
    from prefect_gcp import GcsBucket

    from knot_prefect.blocks.warehouses.lake.staging import StagedCommit
else:  # each of the aws and gcp extras stands alone: see blocks/optional.py
    S3Bucket = optional_block("prefect_aws", "S3Bucket", "aws")
    GcsBucket = optional_block("prefect_gcp", "GcsBucket", "gcp")

#: The storage fields of the bucket mixins (a block has those its format supports).
BUCKET_FIELDS = ("s3_bucket", "gcs_bucket")

_DROP = re.compile(r"\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_$.\-]+)\s*;?\s*", re.I)


class Bucket(NamedTuple):
    """A bucket a lake's storage mixin holds: what :class:`LakeStorage` needs of it."""

    kind: StorageKind
    name: str
    folder: str
    filesystem: Callable[[], AbstractFileSystem]


class BucketStorage(BaseModel):
    """Where a lake's storage mixins chain: each bucket field it has, then a local folder."""

    def _set_bucket(self) -> Bucket | None:
        """The bucket field that is set (each mixin checks its own); None for none."""
        return None

    def _bucket_storage(self, connect: bool, path: str,
                        settings: dict[str, Any]) -> LakeStorage | None:
        """The lake's storage in the bucket that is set; None for a local folder.

        Args:
            connect: Build the bucket's filesystem (False: the root alone, no I/O).
            path: The lake's folder inside the bucket.
            settings: The other fields of :class:`LakeStorage`.
        """
        bucket = self._set_bucket()
        if bucket is None:
            return None
        root = bucket_root(bucket.name, bucket.folder, path)
        return LakeStorage(bucket.kind, root, bucket.filesystem() if connect else None,
                           **settings)


class S3Storage(BucketStorage):
    """The ``s3_bucket`` field of a lake that can keep its tables in S3."""

    s3_bucket: S3Bucket | None = Field(
        default=None,
        description="An S3 bucket (prefect-aws) holding the lake; leave empty for GCS or local.",
    )

    def _set_bucket(self) -> Bucket | None:
        if self.s3_bucket is None:
            return super()._set_bucket()
        s3 = self.s3_bucket
        return Bucket("s3", s3.bucket_name, s3.bucket_folder, lambda: s3_filesystem(s3))


class GcsStorage(BucketStorage):
    """The ``gcs_bucket`` field of a lake that can keep its tables in GCS."""

    gcs_bucket: GcsBucket | None = Field(
        default=None,
        description="A GCS bucket (prefect-gcp) holding the lake; leave empty for S3 or local.",
    )

    @model_validator(mode="after")
    def _one_bucket(self) -> Self:
        if self.gcs_bucket is not None and getattr(self, "s3_bucket", None) is not None:
            raise ValueError(
                f"{type(self).__name__} takes s3_bucket or gcs_bucket, not both: clear one "
                "of them."
            )
        return self

    def _set_bucket(self) -> Bucket | None:
        if self.gcs_bucket is None:
            return super()._set_bucket()
        gcs = self.gcs_bucket
        return Bucket("gcs", gcs.bucket, gcs.bucket_folder, lambda: gcs_filesystem(gcs))


class LakeWarehouse(Warehouse, BucketStorage):
    """A warehouse whose tables are files on a local folder or in a bucket.

    Queries run in DuckDB over the tables they name. A lake keeps its tables in a
    local folder; the storage mixins it lists before this class add the buckets
    its format supports (:class:`S3Storage`, :class:`GcsStorage`), so the Prefect
    UI offers only fields the block can save. Subclasses name their default local
    folder (``_home_folder``, inside the knot home) and how messages call them
    (``_label``), and open a query's relation (:meth:`_query`).
    """

    _home_folder: ClassVar[str]
    _label: ClassVar[str]

    path: str = ""
    """Folder of the lake: a local folder when no bucket is set, otherwise a folder inside the
    bucket (after the bucket's own bucket_folder). Empty: a folder in the knot home, 'lake' for
    a ParquetLake, 'delta' for a DeltaLake, 'iceberg' for an IcebergTable (whose default SQLite
    catalog, catalog.sqlite, lives in that folder too)."""

    @model_validator(mode="before")
    @classmethod
    def _only_buckets_it_has(cls, data: Any) -> Any:
        # Blocks keep unknown keys, so a bucket this format cannot use would be
        # dropped silently and the tables written to a local folder instead.
        if isinstance(data, dict):
            for field in BUCKET_FIELDS:
                if data.get(field) is not None and field not in cls.model_fields:
                    kept = [name for name in BUCKET_FIELDS if name in cls.model_fields]
                    raise ValueError(
                        f"{cls.__name__} cannot keep its tables in {field}: it takes a local "
                        f"folder (path) or {' or '.join(kept) or 'no bucket'}. Use another "
                        "lake block for that storage (DeltaLake and ParquetLake take both)."
                    )
        return data

    @property
    def location(self) -> str:
        """The lake's root as a URL (``s3://...``, ``gs://...`` or a local path)."""
        return self._lake_storage(connect=False).location

    def _lake_storage(self, connect: bool = True, **settings: Any) -> LakeStorage:
        """The lake's root and filesystem (authenticated by the nested storage block).

        Args:
            connect: Build the bucket's filesystem (False: the root alone, no I/O).
            settings: The other fields of :class:`LakeStorage`.
        """
        settings.setdefault("label", self._label)
        in_bucket = self._bucket_storage(connect, self.path, settings)
        if in_bucket is not None:
            return in_bucket
        root = local_root(self.path, get_settings().home / self._home_folder)
        return LakeStorage("local", root, local_filesystem(), **settings)

    @abstractmethod
    def _query(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyRelation]:
        """The relation of a DuckDB query over the lake's tables, open for a ``with``."""

    @abstractmethod
    def list_tables(self) -> list[str]:
        """The lake's tables, as ``table`` or ``schema.table``, sorted."""

    @abstractmethod
    def drop_table(self, name: str, missing_ok: bool = False) -> None:
        """Remove a table (``missing_ok``: do nothing when it does not exist)."""

    # -- reads ---------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a DuckDB query over the lake's tables and return a pyarrow Table.

        Args:
            sql: The query; tables are named as ``table`` or ``schema.table`` and
                values as ``:name`` placeholders.
            params: Values bound to the placeholders.

        Returns:
            The result.
        """
        with self._query(sql, params) as relation:
            return relation.to_arrow_table()

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result in record batches of at most ``batch_rows`` rows.

        DuckDB scans the data files as the batches are consumed, so results larger
        than memory stream through.
        """
        with self._query(sql, params) as relation:
            for batch in relation.to_arrow_reader(batch_rows):
                if batch.num_rows > batch_rows:
                    yield from batch.to_batches(max_chunksize=batch_rows)  # type: ignore[attr-defined]
                elif batch.num_rows:
                    yield batch

    # -- staged writes -------------------------------------------------------------
    @abstractmethod
    def _files(self) -> LakeStorage:
        """Where the lake's files live, with the block's file settings."""

    def _staged_types(self, data: pa.Table, table: str) -> pa.Table:
        """The column types of staged files: the table format's (Parquet: as they are)."""
        return data

    @abstractmethod
    def _publish_staged(self, commit: StagedCommit, evolve: Evolve, mode: WriteMode) -> None:
        """Publish checked staged parts in one commit of the table format."""

    @staticmethod
    def new_stage_id() -> str:
        """A fresh id for a staged write (its files sort and vacuum like other writes)."""
        from knot_prefect.blocks.warehouses.lake.staging import new_stage_id

        return new_stage_id()

    def stage(self, data: Any, table: str, stage_id: str, part: int = 0,
              unique_keys: Sequence[str] | None = None) -> StagedPart:
        """Write rows as data files in ``table``'s folder that no reader sees until committed.

        A lake's table is what its metadata lists (a manifest, a Delta log, an
        Iceberg snapshot), so staged files stay invisible until :meth:`commit_staged`
        adds them. Many processes may stage parts of one write at the same time;
        staging the same ``(stage_id, part)`` again (a retried task) overwrites the
        part's files. Arguments and errors: see :meth:`Warehouse.stage`.

        Examples:
            >>> import tempfile, pandas as pd
            >>> from knot_prefect import DeltaLake
            >>> lake = DeltaLake(path=tempfile.mkdtemp())
            >>> stage = lake.new_stage_id()
            >>> part = lake.stage(pd.DataFrame({"id": [1, 2], "p": [0.1, 0.2]}), "scores", stage)
            >>> lake.table_exists("scores")
            False
            >>> lake.commit_staged("scores", [part], keys=["id"])
            2
            >>> lake.read("SELECT count(*) AS n FROM scores")["n"].tolist()
            [2]
        """
        from knot_prefect.blocks.warehouses.lake import staging

        return staging.stage(self._files(), data, table, stage_id, part, unique_keys,
                             convert=self._staged_types)

    def commit_staged(self, table: str, parts: Sequence[StagedPart], keys: Sequence[str] = (),
                      evolve: Evolve = False, check_unique: bool = True,
                      mode: WriteMode = "upsert") -> int:
        """Publish every staged part in ONE commit of the table format.

        That commit is a manifest switch (Parquet), a Delta transaction or an
        Iceberg snapshot. Staged files become table files as they are where they
        can; an ``upsert`` into an existing table reads them (DuckDB's out-of-core
        anti-join, a Delta MERGE, an Iceberg overwrite of their keys). Until the
        commit nothing is visible; a failure commits nothing (the staged files stay
        until :meth:`discard_staged`). Arguments: see :meth:`Warehouse.commit_staged`;
        ``mode`` is ``upsert`` (default), ``append``, ``replace`` or ``fail``.

        Returns:
            Rows published.

        Raises:
            SchemaMismatchError: For a null or repeated key, new columns without
                ``evolve``, or types the table cannot hold.
            TableExistsError: For ``mode='fail'`` when the table exists.
            ConcurrentWriteError: When another writer committed first (nothing of
                this commit lands; committing again is safe).
        """
        from knot_prefect.blocks.warehouses.lake import staging

        commit = staging.prepare_commit(self._files(), table, parts, keys, mode, check_unique)
        if commit is None:
            return 0
        self._publish_staged(commit, evolve, mode)
        return commit.rows

    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Remove the files of staged parts that will not be committed."""
        from knot_prefect.blocks.warehouses.lake import staging

        staging.discard_staged(self._files(), parts)

    # -- other ---------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run ``DROP TABLE [IF EXISTS] name``; other statements are refused.

        A lake's tables change only through :meth:`write` (each write one atomic
        commit), so DML and other DDL raise a :class:`WarehouseError` that says what
        to use.
        """
        import duckdb

        drop = _DROP.fullmatch(sql)
        if len(duckdb.extract_statements(sql)) == 1 and drop and not params:
            self.drop_table(drop.group(2), missing_ok=bool(drop.group(1)))
            return
        raise WarehouseError(
            f"A {self._label} runs only 'DROP TABLE [IF EXISTS] name' through execute(): "
            "change tables with write(...) (append, replace, upsert) and query them with read()."
        )

    def check_connection(self) -> str:
        """List the lake's tables.

        Returns:
            The lake's location and how many tables it holds.
        """
        return f"{self._label} at {self.location}: {len(self.list_tables())} table(s)"


def read_columns(dataset: pads.Dataset, table: TableName,
                 columns: Sequence[str] | None) -> pa.Table:
    """A table's dataset read whole, or the named columns of it (checked first).

    Raises:
        InvalidIdentifierError, SchemaMismatchError: For a bad or unknown column name.
    """
    if columns is None:
        return dataset.to_table()
    for column in columns:
        validate_identifier(column, "column name")
    check_columns_exist(columns, dataset.schema.names, str(table))
    return dataset.to_table(columns=list(columns))
