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
from typing import TYPE_CHECKING, Any

from pydantic import PrivateAttr

from knot_prefect.blocks.fields import loaded_block_example
from knot_prefect.blocks.warehouses._common import prepare_frame
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError, TableName
from knot_prefect.blocks.warehouses.lake.block import LakeWarehouse, read_columns

if TYPE_CHECKING:
    from typing import Self

    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.lake.storage import FormatLocation, LakeStorage


def versioned_lake_example(block: str) -> str:
    """How a saved Delta or Iceberg block is used (the Prefect UI shows it)."""
    return loaded_block_example(block, "lake", """
lake.write(frame, "features.daily", mode="upsert", keys=["id"])
recent = lake.read("SELECT * FROM features.daily WHERE day >= :day", {"day": "2024-01-01"})
""")


class VersionedLake(LakeWarehouse):
    """A lake whose reads can be pinned to table versions.

    Subclasses supply the format's hooks: where the lake lives (:meth:`_location`),
    its column types (:meth:`_format_types`), the publish step of a staged commit
    (:meth:`_publish_staged`), and a query's relation at given versions
    (:meth:`_versioned_query`), recording the version of each table it read.
    """


    # Versions every read of this copy sees, by table (see pin_reads).
    _versions: dict[str, int] = PrivateAttr(default_factory=dict)

    @abstractmethod
    def _location(self, connect: bool = True) -> FormatLocation:
        """Where the lake lives, with the format's settings (``connect``: with I/O)."""

    @abstractmethod
    def _format_types(self, data: pa.Table, table: str) -> pa.Table:
        """``data`` with every column in a type the format holds, cast without loss."""

    def _staged_types(self, data: pa.Table, table: str) -> pa.Table:
        return self._format_types(data, table)

    def _files(self) -> LakeStorage:
        return self._location().storage

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

    @abstractmethod
    def _dataset_at(self, table: TableName, version: int | None) -> pads.Dataset:
        """The table's files at ``version`` (the latest when None) as an Arrow dataset."""

    def read_table_arrow(
        self, name: str, columns: Sequence[str] | None = None, version: int | None = None
    ) -> pa.Table:
        """Read a whole table, or some of its columns, as a pyarrow Table.

        Args:
            name: ``"table"`` or ``"schema.table"``.
            columns: The columns to read (all when None).
            version: The version to read, a Delta version or an Iceberg snapshot id
                (when None: the pinned one, see :meth:`pin_reads`, else the latest).
        """
        table = TableName.parse(name)
        if version is None:
            version = self._versions.get(str(table))
        return read_columns(self._dataset_at(table, version), table, columns)

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
