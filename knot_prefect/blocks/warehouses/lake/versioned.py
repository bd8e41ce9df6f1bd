"""Lakes whose tables keep every committed version readable (Delta, Iceberg).

A run pins the versions of the tables it reads once (:meth:`VersionedLake.pin_reads`)
and reads through the pinned copy, so the versions it records in its lineage are
exactly the data it read; :meth:`VersionedLake.read_versioned` reads them again.
A table's version is what its format counts: a Delta version, an Iceberg snapshot id.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, PrivateAttr

from knot_prefect.blocks.warehouses._common import prepare_frame
from knot_prefect.blocks.warehouses.base import StagedPart, WriteMode
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError, TableName
from knot_prefect.blocks.warehouses.lake import staging
from knot_prefect.blocks.warehouses.lake.block import LakeWarehouse

if TYPE_CHECKING:
    from typing import Self

    import duckdb
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.lake.staging import StagedCommit
    from knot_prefect.blocks.warehouses.lake.storage import LakeStorage


class FormatLocation(Protocol):
    """Where a table format's lake lives: its storage, and what the format adds."""

    @property
    def storage(self) -> LakeStorage:
        """The lake's root and filesystem."""


class VersionedLake(LakeWarehouse):
    """A lake whose reads can be pinned to table versions.

    Staged writes are the same for every format: parts are data files in the table's
    folder that the format's metadata does not list yet, and the commit publishes
    them all in one format commit. Subclasses supply the format's hooks: where the
    lake lives (:meth:`_location`), its column types (:meth:`_format_types`), the
    publish step of a staged commit (:meth:`_publish_staged`), and a query's relation
    at given versions (:meth:`_versioned_query`), recording the version of each table
    it read.
    """

    threads: int | None = Field(
        default=None,
        gt=0,
        description=(
            "DuckDB threads per query; empty uses every core (set 1 on Dask workers "
            "that run one task per core)."
        ),
    )

    # Versions every read of this copy sees, by table (see pin_reads).
    _versions: dict[str, int] = PrivateAttr(default_factory=dict)

    @abstractmethod
    def _location(self, connect: bool = True) -> FormatLocation:
        """Where the lake lives, with the format's settings (``connect``: with I/O)."""

    @abstractmethod
    def _format_types(self, data: pa.Table, table: str) -> pa.Table:
        """``data`` with every column in a type the format holds, cast without loss."""

    def _staged_types(self, data: pa.Table, table: str) -> pa.Table:
        """The column types of staged files (all-null columns may stay untyped)."""
        return self._format_types(data, table)

    @abstractmethod
    def _publish_staged(self, commit: StagedCommit, evolve: bool, mode: WriteMode) -> None:
        """Publish checked staged parts in one commit of the format."""

    def _prepare_frame(self, data: pa.Table, table: str) -> pa.Table:
        """``prepare_frame``, then the column types the format holds."""
        return self._format_types(prepare_frame(data, table), table)

    @abstractmethod
    def _versioned_query(
        self, sql: str, params: Mapping[str, Any] | None, versions: Mapping[str, int],
        seen: dict[str, int] | None,
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyRelation]:
        """The relation of a query reading ``versions`` of those tables (others:
        their latest), filling ``seen`` with the version of each table read."""

    def _query(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyRelation]:
        return self._versioned_query(sql, params, self._versions, None)

    def read_versioned(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> tuple[pa.Table, dict[str, int]]:
        """Run a query at pinned table versions; return the result and the versions read.

        Args:
            sql: The query, as for :meth:`read_arrow`.
            params: Values bound to the placeholders.
            versions: The version to read of some tables (``{"scores": 3}``); the
                others are read at their latest version.

        Returns:
            The result, and the version of every table the query read.

        Examples:
            >>> import tempfile, pandas as pd
            >>> from knot_prefect import DeltaLake
            >>> lake = DeltaLake(path=tempfile.mkdtemp())
            >>> _ = lake.write(pd.DataFrame({"id": [1]}), "ids")
            >>> _ = lake.write(pd.DataFrame({"id": [2]}), "ids")
            >>> rows, read = lake.read_versioned("SELECT id FROM ids", versions={"ids": 0})
            >>> rows.column("id").to_pylist(), read
            ([1], {'ids': 0})
        """
        seen: dict[str, int] = {}
        pins = {**self._versions, **(versions or {})}
        with self._versioned_query(sql, params, pins, seen) as relation:
            return relation.to_arrow_table(), seen

    def pin_reads(self, sql: str, params: Mapping[str, Any] | None = None
                  ) -> tuple[Self, dict[str, int]]:
        """Pin the tables a query reads at their current versions.

        A scoring or training run pins its inputs once, then reads through the copy
        returned (pickled to Dask workers with its pins), so the versions it records
        in its lineage are exactly the data it read; :meth:`read_versioned` with them
        reads the same rows again later.

        Args:
            sql: The query whose tables to pin, or one table's name (nothing of them
                is read).
            params: Values bound to its placeholders.

        Returns:
            A copy of the block whose reads of those tables see the pinned versions,
            and the versions (``{"table": version}``).

        Examples:
            >>> import tempfile, pandas as pd
            >>> from knot_prefect import DeltaLake
            >>> lake = DeltaLake(path=tempfile.mkdtemp())
            >>> _ = lake.write(pd.DataFrame({"id": [1]}), "ids")
            >>> pinned, versions = lake.pin_reads("SELECT * FROM ids")
            >>> _ = lake.write(pd.DataFrame({"id": [2]}), "ids", mode="append")
            >>> versions, len(pinned.read("SELECT * FROM ids")), len(lake.read("SELECT * FROM ids"))
            ({'ids': 0}, 1, 2)
        """
        with contextlib.suppress(InvalidIdentifierError):
            sql = f"SELECT * FROM {TableName.parse(sql.strip()).quoted()}"
        _, versions = self.read_versioned(f"SELECT * FROM ({sql}) AS q LIMIT 0", params)
        pinned = self.model_copy()
        pinned._versions = {**self._versions, **versions}
        return pinned, versions

    # -- staged writes -------------------------------------------------------------
    def stage(
        self,
        data: Any,
        table: str,
        stage_id: str,
        part: int = 0,
        unique_keys: Sequence[str] | None = None,
    ) -> StagedPart:
        """Write rows as data files in ``table``'s folder that no reader sees until committed.

        A Delta or Iceberg table is what its metadata lists, so staged files are
        invisible until :meth:`commit_staged` adds them. Many processes may stage
        parts of one write at the same time; staging the same ``(stage_id, part)``
        again (a retried task) overwrites the part's files.

        Args:
            data: A pandas, polars or pyarrow frame, or an iterable of them (streamed
                to the files one at a time).
            table: ``"table"`` or ``"schema.table"``.
            stage_id: From :meth:`new_stage_id`, the same for every part of a write.
            part: This part's number, distinct within the staged write.
            unique_keys: Check that these columns are never null and unique together
                within the part.

        Returns:
            The staged part, to pass to :meth:`commit_staged`.

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
        return staging.stage(self._location().storage, data, table, stage_id, part, unique_keys,
                             convert=self._staged_types)

    def commit_staged(
        self,
        table: str,
        parts: Sequence[StagedPart],
        keys: Sequence[str] = (),
        evolve: bool = False,
        check_unique: bool = True,
        mode: WriteMode = "upsert",
    ) -> int:
        """Publish every staged part in ONE commit: a Delta transaction, an Iceberg snapshot.

        A new table (and an ``append`` or ``replace``) takes the staged files as they
        are; an ``upsert`` into an existing table reads them (a Delta MERGE, an
        Iceberg overwrite of the rows of their keys). Until the commit nothing is
        visible; a failure commits nothing (the staged files stay until
        :meth:`discard_staged`).

        Args:
            table: ``"table"`` or ``"schema.table"``; created when missing.
            parts: What :meth:`stage` returned, for every part of the write.
            keys: Columns identifying a row (required by ``upsert``).
            evolve: Allow new columns to be added to an existing table.
            check_unique: Check that no key is staged twice.
            mode: ``upsert`` (default), ``append``, ``replace`` or ``fail``.

        Returns:
            Rows published.

        Raises:
            SchemaMismatchError: For a null or repeated key, new columns without
                ``evolve``, or types the table cannot hold.
            TableExistsError: For ``mode='fail'`` when the table exists.
            ConcurrentWriteError: When another writer's commit conflicts (nothing is
                committed; committing again is safe).
        """
        commit = staging.prepare_commit(self._location().storage, table, parts, keys, mode,
                                        check_unique)
        if commit is None:
            return 0
        self._publish_staged(commit, evolve, mode)
        return commit.rows

    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Remove the files of staged parts that will not be committed."""
        staging.discard_staged(self._location().storage, parts)
