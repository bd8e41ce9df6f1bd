"""The ``Warehouse`` interface that every knot task depends on.

Backends (DuckDB, SQLAlchemy databases, Snowflake, BigQuery, Parquet lakes) each live
in a module of their own and implement the abstract methods here. Tasks only ever see
this interface, so a flow moves between warehouses by changing a block name.

Parameters in SQL are always bound, never formatted in: write ``:name`` placeholders
and pass ``params={"name": value}``; each backend translates to its driver's style.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, get_args

from knot_prefect.blocks.base import KnotBlock
from knot_prefect.blocks.warehouses.identifiers import (
    IdentifierLimit,
    TableName,
    validate_identifier,
)
from knot_prefect.errors import KnotError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from knot_prefect.blocks.warehouses.identifiers import TableName

WriteMode = Literal["append", "replace", "upsert", "fail"]
WRITE_MODES: tuple[str, ...] = get_args(WriteMode)
# Which of a frame's columns that the table lacks a write may add to it: all of them
# (True), none (False), or only the columns named.
Evolve: TypeAlias = bool | Collection[str]
DEFAULT_BATCH_ROWS = 100_000


class WarehouseError(KnotError):
    """A warehouse operation failed; the message names the table and the cause."""


class TableNotFoundError(WarehouseError):
    """The table named in a read does not exist."""


class SchemaMismatchError(WarehouseError):
    """A frame's columns or types do not match the existing table."""


class TableExistsError(WarehouseError):
    """``mode='fail'`` was asked for and the table already exists."""


class ConcurrentWriteError(WarehouseError):
    """Another writer held or changed the table during this write; nothing was written.

    Raised where a backend serialises writers instead of merging them: a DuckDB file
    that another process has open, a Parquet lake table whose manifest another writer
    switched first. The table is left exactly as the other writer made it, so retrying
    the write is safe; the I/O tasks retry it like a transient connection error.
    """


def table_exists_error(table: str, where: str) -> TableExistsError:
    """The one error for ``mode='fail'`` on an existing table.

    Args:
        table: The table as the caller named it.
        where: The warehouse, described without secrets.
    """
    return TableExistsError(
        f"Table {table} already exists in {where} and mode='fail': choose mode='append', "
        "'replace' or 'upsert', or another table name."
    )


def table_not_found_error(table: TableName, where: str,
                          tables: Sequence[str]) -> TableNotFoundError:
    """The error for a table a lake does not hold, naming the tables it does.

    Args:
        table: The table.
        where: The lake, described without secrets.
        tables: The tables it holds.
    """
    return TableNotFoundError(
        f"Table {table} does not exist in {where} (it holds: "
        f"{', '.join(tables) or 'no tables yet'}): check the name, or write the table first."
    )


class WarehouseConnectionError(WarehouseError):
    """The warehouse could not be reached, refused the credentials or lost the connection.

    The message names the host, database and user, never a password or token.

    Attributes:
        transient: Whether trying again later may succeed (the server was unreachable,
            restarting or ended the session), as opposed to refused credentials or
            a database that does not exist. The I/O tasks retry transient errors only.
    """

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.transient))


@dataclass(frozen=True)
class WriteResult:
    """What a write did.

    Attributes:
        table: The table written, as given.
        mode: The write mode used.
        rows: Rows written (inserted or upserted).
        seconds: Wall time of the write.
    """

    table: str
    mode: str
    rows: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (for artifacts and logs)."""
        return asdict(self)


@dataclasses.dataclass
class StagedPart:
    """Rows written by :meth:`Warehouse.stage`, not yet part of the table.

    Small and picklable: a Dask worker stages its rows and returns this; the flow
    process gathers the parts and publishes them all with one
    :meth:`Warehouse.commit_staged`.

    Attributes:
        table: The table the rows are for.
        stage_id: The staged write they belong to.
        part: The part's number within the staged write.
        rows: Rows staged.
        files: ``{"path", "rows"}`` of each data file, paths relative to the table
            (Parquet lakes).
        schema: The rows' Arrow schema, encoded (None when no rows were staged).
        stage_table: The hidden table holding the rows (SQL warehouses).
    """

    table: str
    stage_id: str
    part: int
    rows: int = 0
    files: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    schema: str | None = None
    stage_table: str | None = None

    def arrow_schema(self) -> pa.Schema | None:
        """The staged rows' Arrow schema (None when no rows were staged)."""
        return decode_schema(self.schema) if self.schema else None


def encode_schema(schema: pa.Schema) -> str:
    """An Arrow schema as text (for a :class:`StagedPart`)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_schema(encoded: str) -> pa.Schema:
    """The Arrow schema :func:`encode_schema` encoded."""
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))


def warehouse_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run logger inside a flow or task run, knot's own logger outside one."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_logger, get_run_logger

    if TaskRunContext.get() or FlowRunContext.get():
        return get_run_logger()
    return get_logger("knot_prefect.warehouses")


def validate_write_mode(mode: str, keys: Sequence[str] | None) -> None:
    """Check a write mode and its keys before anything is written.

    Raises:
        ValueError: For an unknown mode, or ``upsert`` without keys.
    """
    if mode not in WRITE_MODES:
        raise ValueError(f"Unknown write mode {mode!r}: use one of {', '.join(WRITE_MODES)}.")
    if mode == "upsert" and not keys:
        raise ValueError("mode='upsert' needs keys=[...] naming the columns that identify a row.")


def to_arrow(data: Any) -> pa.Table:
    """Convert a pandas, polars or pyarrow frame to a pyarrow Table.

    Args:
        data: A ``pandas.DataFrame``, ``polars.DataFrame``, ``pyarrow.Table`` or
            ``pyarrow.RecordBatch``.

    Returns:
        The data as a pyarrow Table (zero-copy where the source allows it).

    Raises:
        TypeError: For any other type, naming the type received.
    """
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    raise TypeError(
        f"Cannot write a {type(data).__module__}.{type(data).__name__}: "
        "pass a pandas DataFrame, a polars DataFrame or a pyarrow Table."
    )


class Warehouse(KnotBlock, ABC):
    """A place tables live: read with SQL, write frames atomically.

    Every implementation guarantees that a failed or killed ``write`` leaves the
    target table exactly as it was, that identifiers are validated and quoted, and
    that values are bound parameters.
    """

    _block_schema_capabilities = ["read-sql", "write-table"]

    #: The quote of identifiers in this warehouse's SQL.
    identifier_quote: ClassVar[str] = '"'

    def shared_by_processes(self) -> bool:
        """Whether several processes (Dask workers) may read and stage here at once.

        False for a database held by one process at a time (a DuckDB or SQLite file).
        """
        return True

    def waiting_for_turns(self, seconds: float) -> Warehouse:
        """This warehouse, waiting up to ``seconds`` for another process's turn.

        For storage that one process holds at a time (a DuckDB file): a read or write
        that meets another process's turn waits for it instead of failing at once with
        ``ConcurrentWriteError``. Warehouses whose processes work side by side return
        themselves.
        """
        return self

    # -- names ---------------------------------------------------------------------
    def identifier_limit(self) -> IdentifierLimit | None:
        """The longest name this backend keeps whole; ``None`` when 128 characters fit."""
        return None

    def table_name(self, name: str) -> TableName:
        """Parse ``"table"`` or ``"schema.table"`` and check it against the backend's limit.

        Raises:
            InvalidIdentifierError: For an unsafe name, or one longer than the backend
                keeps (never truncated).
        """
        table = TableName.parse(name)
        limit = self.identifier_limit()
        return limit.check_table(table) if limit else table

    def check_column_names(self, names: Sequence[str], kind: str = "column name") -> None:
        """Refuse column names longer than the backend keeps whole."""
        limit = self.identifier_limit()
        if limit is None:
            return
        for name in names:
            limit.check(name, kind)

    # -- reads ---------------------------------------------------------------------
    @abstractmethod
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return the result as a pyarrow Table."""

    def read(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a query and return the result as a pandas DataFrame.

        Args:
            sql: The query, with ``:name`` placeholders for values.
            params: Values bound to the placeholders.

        Returns:
            The result.
        """
        # One block per column: no copy of every column into 2-D blocks by type.
        return self.read_arrow(sql, params).to_pandas(split_blocks=True)

    def read_batches(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result in record batches of at most ``batch_rows`` rows.

        Args:
            sql: The query, with ``:name`` placeholders for values.
            params: Values bound to the placeholders.
            batch_rows: The most rows in one batch.

        Returns:
            The batches, streamed from the server where the backend can.
        """
        return self._read_batches(sql, params, batch_rows)

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Backends stream from the server; this default reads the whole result first."""
        yield from self.read_arrow(sql, params).to_batches(max_chunksize=batch_rows)

    def read_table(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read a whole table (or some of its columns) as a pandas DataFrame."""
        return self.read_table_arrow(name, columns).to_pandas(split_blocks=True)

    @abstractmethod
    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table (or some of its columns) as a pyarrow Table."""

    # -- writes --------------------------------------------------------------------
    def write(
        self,
        data: Any,
        table: str,
        mode: WriteMode = "append",
        keys: Sequence[str] | None = None,
        evolve: Evolve = False,
    ) -> WriteResult:
        """Write a frame to a table, atomically.

        Args:
            data: A pandas, polars or pyarrow frame.
            table: ``"table"`` or ``"schema.table"``.
            mode: ``append`` adds rows; ``replace`` swaps the table for the frame;
                ``upsert`` updates rows whose ``keys`` match and inserts the rest;
                ``fail`` refuses to write to an existing table. Every mode creates
                a missing table from the frame's schema.
            keys: The columns identifying a row (required by ``upsert``).
            evolve: Allow new columns to be added to an existing table: True for any,
                or a collection of the only column names that may be added.

        Returns:
            What was written. An empty frame writes nothing and is logged.

        Raises:
            ValueError: For an unknown mode, or ``upsert`` without keys.
            InvalidIdentifierError: For an unsafe table or column name.
            SchemaMismatchError: For new columns ``evolve`` does not allow, or types
                the table cannot hold.
            TableExistsError: For ``mode='fail'`` when the table exists.
        """
        validate_write_mode(mode, keys)
        self.table_name(table)
        arrow = to_arrow(data)
        self.check_column_names(arrow.column_names)
        for key in keys or []:
            validate_identifier(key, "upsert key")
        self.check_column_names(list(keys or []), "upsert key")
        started = time.perf_counter()
        if arrow.num_rows == 0:
            warehouse_logger().info("Nothing to write to %s: the frame is empty.", table)
            return WriteResult(table=table, mode=mode, rows=0, seconds=0.0)
        arrow = self._prepare_frame(arrow, table)
        if mode == "upsert":
            from knot_prefect.blocks.warehouses._common import check_keys

            check_keys(arrow, list(keys or []), table)
        rows = self._write_arrow(arrow, table, mode, list(keys or []), evolve)
        return WriteResult(
            table=table, mode=mode, rows=rows, seconds=time.perf_counter() - started
        )

    def _prepare_frame(self, data: pa.Table, table: str) -> pa.Table:
        """Check column names and normalise types before a write (see ``prepare_frame``)."""
        from knot_prefect.blocks.warehouses._common import prepare_frame

        return prepare_frame(data, table)

    @abstractmethod
    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        """Write a prepared, non-empty Arrow table atomically; return the rows written.

        ``write`` has already checked the mode, the names and (for ``upsert``) the
        keys, and prepared the frame.

        Raises:
            TableExistsError: For ``mode='fail'`` on an existing table.
            SchemaMismatchError: For new columns without ``evolve``, or types the table
                cannot hold.
            ConcurrentWriteError: When another writer's commit conflicts with this one.
        """

    # -- staged writes -------------------------------------------------------------
    @staticmethod
    def new_stage_id() -> str:
        """A fresh id for a staged write: pass it to every :meth:`stage` call of the write.

        The id starts with the time it was made, so stale stages can be recognised.
        """
        return f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}-stage"

    @abstractmethod
    def stage(self, data: Any, table: str, stage_id: str, part: int = 0,
              unique_keys: Sequence[str] | None = None) -> StagedPart:
        """Write rows for ``table`` where no reader sees them until committed.

        Many processes may stage parts of one write at the same time (each Dask worker
        its own part); :meth:`commit_staged` then publishes all of them at once.
        Staging the same ``(stage_id, part)`` again (a retried task) replaces the
        part, so nothing is staged twice. Parts never committed are removed by
        :meth:`discard_staged`.

        Args:
            data: A pandas, polars or pyarrow frame, or an iterable of them (streamed
                one at a time).
            table: ``"table"`` or ``"schema.table"``.
            stage_id: From :meth:`new_stage_id`, the same for every part of a write.
            part: This part's number, distinct within the staged write.
            unique_keys: Check that these columns are never null and unique together
                within the part; when every part is checked and the parts hold
                disjoint keys, the commit can skip its own check
                (``check_unique=False``).

        Returns:
            The staged part, to pass to :meth:`commit_staged`.

        Raises:
            SchemaMismatchError: When later frames do not convert to the first one's
                column types, or ``unique_keys`` are null or repeat (the part is then
                removed).
        """

    @abstractmethod
    def commit_staged(self, table: str, parts: Sequence[StagedPart], keys: Sequence[str],
                      evolve: Evolve = False, check_unique: bool = True) -> int:
        """Upsert every staged part into ``table`` at once, then remove the stages.

        Until the commit nothing is visible; a failure leaves the table exactly as
        it was (the stages stay until :meth:`discard_staged`). SQL warehouses and
        Parquet lakes also take ``mode=`` (``append``, ``replace``, ``upsert`` or
        ``fail``).

        Args:
            table: The table to publish to (``"table"`` or ``"schema.table"``); a
                missing one is created.
            parts: Every part of the write, as :meth:`stage` returned them.
            keys: The columns that identify a row.
            evolve: Whether the table may gain the parts' new columns: True for any,
                or a collection of the only column names that may be added.
            check_unique: Refuse keys staged more than once; pass False only when the
                parts hold disjoint keys, each part's checked by :meth:`stage`.

        Returns:
            The number of rows published.

        Raises:
            SchemaMismatchError: For a null or repeated key (naming an example), new
                columns without ``evolve``, or types the table cannot hold.
        """

    @abstractmethod
    def discard_staged(self, parts: Sequence[StagedPart]) -> None:
        """Remove staged parts that will not be committed."""

    # -- other ---------------------------------------------------------------------
    @abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) exists."""

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, DML)."""
