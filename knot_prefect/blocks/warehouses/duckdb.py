"""``DuckDBWarehouse``: the embedded default warehouse, one DuckDB file.

Reads and writes go through Arrow without copies. Every write runs in one DuckDB
transaction: a failed or killed write leaves the table as it was.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, PrivateAttr

from knot_prefect.blocks.fields import loaded_block_example
from knot_prefect.blocks.warehouses._common import (
    bind_named,
    check_columns_exist,
    type_family,
)
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    Evolve,
    TableNotFoundError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
from knot_prefect.blocks.warehouses.staging import (
    SqlSession,
    SqlStagedWarehouse,
    plan_publish,
    publish,
)
from knot_prefect.blocks.warehouses.turns import waiting_for_turn
from knot_prefect.settings import get_settings

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

MEMORY = ":memory:"
#: Suffix of the file next to a database that knot's processes lock to take turns on it.
TURN_SUFFIX = ".knot-lock"
T = TypeVar("T", "pa.Table", "pa.RecordBatch")


# How a saved block is used (the Prefect UI shows it on the block's page).
CODE_EXAMPLE = loaded_block_example("DuckDBWarehouse", "warehouse", """
customers = warehouse.read("select * from customers where country = :c", {"c": "FR"})
warehouse.write(scores_df, "analytics.scores", mode="upsert", keys=["customer_id"])
""")


class DuckDBWarehouse(SqlStagedWarehouse):
    """A DuckDB database file used as a warehouse (the embedded default).

    Leave ``path`` empty to use ``warehouse.duckdb`` in the knot home folder
    (``KNOT_HOME``), or use ``":memory:"`` for a database that lives as long as
    this block object.

    Examples:
        >>> import pandas as pd
        >>> from knot_prefect import DuckDBWarehouse
        >>> warehouse = DuckDBWarehouse(path=":memory:")
        >>> warehouse.write(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.9]}), "scores").rows
        2
        >>> warehouse.read("select score from scores where id = :id", {"id": 2})["score"].tolist()
        [0.9]
    """

    _block_type_name = "DuckDB Warehouse"
    _description = (
        "A DuckDB database file used as a warehouse: SQL reads as pandas or Arrow, "
        "atomic appends, replaces and upserts. The embedded default of knot."
    )
    _code_example = CODE_EXAMPLE

    path: str | None = Field(
        default=None,
        description=(
            "Path of the DuckDB database file, or ':memory:'. Empty means warehouse.duckdb "
            "in the knot home folder (KNOT_HOME)."
        ),
    )

    turn_wait_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Seconds a read or write waits while another process has the file open "
            "(DuckDB opens a file in one process at a time), then fails with a "
            "ConcurrentWriteError. 0 fails at once, leaving the retry to the caller."
        ),
    )

    _memory: Any = PrivateAttr(default=None)
    _memory_lock: Any = PrivateAttr(default_factory=threading.Lock)

    # -- connections -----------------------------------------------------------------
    @property
    def database_path(self) -> str:
        """The database file this block opens (resolved from the knot home if unset)."""
        if self.path:
            return self.path if self.path == MEMORY else str(Path(self.path).expanduser())
        return str(get_settings().warehouse_path)

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a connection for the duration of a ``with`` block.

        File databases are opened per operation so other processes can use the file
        in between; an in-memory database is kept for the life of the block object.

        Examples:
            >>> with DuckDBWarehouse(path=":memory:").connect() as con:
            ...     con.sql("select 42").fetchall()
            [(42,)]
        """
        path = self.database_path
        if path == MEMORY:
            con = self._memory_cursor()
            try:
                yield con
            finally:
                con.close()
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        held, con = waiting_for_turn(lambda: _opened(path), self.turn_wait_seconds)
        with held:
            yield con

    def waiting_for_turns(self, seconds: float) -> DuckDBWarehouse:
        """A copy that waits at least ``seconds`` for another process's turn on the file.

        The copy is for this process's own use: saved as a document or passed as a
        deployment parameter, it would be the block as saved, without the wait. The
        block itself is returned where nothing would change, and for ``:memory:`` (no
        other process can open it, and a copy would hold a database of its own).

        Examples:
            >>> DuckDBWarehouse(path="w.duckdb").waiting_for_turns(10).turn_wait_seconds
            10.0
        """
        if self.path == MEMORY or self.turn_wait_seconds >= seconds:
            return self
        return self.model_copy(update={"turn_wait_seconds": float(seconds)})

    def _memory_cursor(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        with self._memory_lock:
            if self._memory is None:
                self._memory = duckdb.connect(MEMORY)
        return self._memory.cursor()

    def check_connection(self) -> str:
        """Open the database and report DuckDB's version and the file."""
        with self.connect() as con:
            rows = con.sql("select version()").fetchall()
        version = rows[0][0] if rows else "unknown"
        return f"DuckDB {version} at {self.database_path}"

    # -- reads -----------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return the result as a pyarrow Table (zero-copy from DuckDB)."""
        import pyarrow as pa

        sql, bound = bind_named(sql, params, "named_dollar")
        with self.connect() as con, _translate_errors(sql):
            relation = con.sql(sql, params=bound or None)
            return utc(relation.to_arrow_table()) if relation is not None else pa.table({})

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        sql, bound = bind_named(sql, params, "named_dollar")
        with self.connect() as con:
            with _translate_errors(sql):
                relation = con.sql(sql, params=bound or None)
            if relation is None:
                return
            for batch in relation.to_arrow_reader(batch_rows):
                yield utc(batch)

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table (or some of its columns) as a pyarrow Table.

        Raises:
            TableNotFoundError: When the table does not exist; the message lists the
                tables that do.
        """
        table = TableName.parse(name)
        selected = ", ".join(quote_identifier(c, "column name") for c in columns or []) or "*"
        with self.connect() as con:
            if not _exists(con, table):
                raise TableNotFoundError(_not_found_message(con, table, self.database_path))
            if columns:
                existing = con.sql(f"select * from {table.quoted()} limit 0").columns
                check_columns_exist(columns, existing, str(table), case_insensitive=True)
            return utc(con.sql(f"select {selected} from {table.quoted()}").to_arrow_table())

    # -- writes ----------------------------------------------------------------------
    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        name = self.table_name(table)
        source = f"_knot_source_{uuid.uuid4().hex[:12]}"
        with self.connect() as con, _translate_errors(f"write to {name}"):
            con.register(source, data)
            try:
                with _transaction(con) as session:
                    plan = plan_publish(session, name, data.schema, str(name), mode, keys,
                                        evolve, self.describe())
                    rows = f"(select {_select_list(data)} from {quote_identifier(source)})"
                    publish(session, name, data.schema, rows, plan)
            finally:
                con.unregister(source)
        return data.num_rows

    # -- staged writes: hooks of the shared algorithm (see staging.py) ------------------
    @contextlib.contextmanager
    def _session(self) -> Iterator[SqlSession]:
        with self.connect() as con, _translate_errors("a staged write"), \
                _transaction(con) as session:
            yield session

    def describe(self) -> str:
        """The database as text (for messages)."""
        return f"the DuckDB warehouse {self.database_path}"

    def shared_by_processes(self) -> bool:
        """False: one process at a time writes a DuckDB file (and ``:memory:`` is private)."""
        return False

    # -- other -----------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) exists."""
        table = TableName.parse(name)
        with self.connect() as con:
            return _exists(con, table)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, DML)."""
        sql, bound = bind_named(sql, params, "named_dollar")
        with self.connect() as con, _translate_errors(sql):
            con.sql(sql, params=bound or None)


# -- helpers -----------------------------------------------------------------------------
#: (process id, database file) -> [descriptor of its locked turn file, connections using it]
_turns: dict[tuple[int, str], list[int]] = {}
_turns_lock = threading.Lock()


@contextlib.contextmanager
def _process_turn(path: str) -> Iterator[None]:
    """Hold a DuckDB file for this process from before DuckDB opens it until it is closed.

    DuckDB's own file lock is given back while the closing process is still finishing
    the file: a process that opens it in that moment can lose the write committed just
    before (duckdb 2.0, several processes taking turns). So knot's processes also take
    an ``flock`` on ``<file>.knot-lock`` first and keep it until DuckDB has closed the
    database. Threads of one process share the turn, as they share DuckDB's database.
    A separate file because closing any descriptor of the database file itself would
    drop DuckDB's ``fcntl`` lock.

    Raises:
        ConcurrentWriteError: When another process holds the turn.
    """
    try:
        import fcntl
    except ImportError:  # Windows: DuckDB's lock is the operating system's mandatory lock
        yield
        return
    key = (os.getpid(), str(Path(path).resolve()))
    with _turns_lock:
        turn = _turns.get(key)
        if turn is None:
            descriptor = os.open(path + TURN_SUFFIX, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                raise _busy(path, f"{path}{TURN_SUFFIX} is locked") from None
            turn = _turns[key] = [descriptor, 0]
        turn[1] += 1
    try:
        yield
    finally:
        with _turns_lock:
            turn[1] -= 1
            if not turn[1]:
                del _turns[key]
                os.close(turn[0])


def _opened(path: str) -> tuple[contextlib.ExitStack, duckdb.DuckDBPyConnection]:
    """This process's turn on the file and a connection to it, closed by the stack.

    Raises:
        ConcurrentWriteError: When another process holds the file; nothing is held then.
    """
    held = contextlib.ExitStack()
    try:
        held.enter_context(_process_turn(path))
        con = _open_file(path)
    except BaseException:
        held.close()
        raise
    held.callback(con.close)
    return held, con


def _open_file(path: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    try:
        return duckdb.connect(path)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():  # a process outside knot has the file open
            raise _busy(path, str(exc)) from exc
        raise WarehouseError(f"Cannot open the DuckDB file {path}: {exc}") from exc


def _busy(path: str, why: str) -> ConcurrentWriteError:
    return ConcurrentWriteError(
        f"The DuckDB file {path} is open in another process, so nothing was read or "
        f"written ({why}). DuckDB lets one process at a time open a file: retrying is "
        "safe once that process is done."
    )


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[SqlSession]:
    """A session in one DuckDB transaction (its DDL included), committed at the end."""
    con.sql("BEGIN TRANSACTION")
    try:
        yield _DuckDBSession(con)
        con.sql("COMMIT")
    except BaseException:
        con.sql("ROLLBACK")
        raise


class _DuckDBSession(SqlSession):
    """DuckDB's hooks: its DDL is transactional and it creates tables from queries."""

    case_insensitive = True

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def run(self, sql: str) -> None:
        self.con.sql(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.sql(sql).fetchall()

    def families(self, table: TableName) -> dict[str, str]:
        if not _exists(self.con, table):
            return {}
        schema = self.con.sql(f"select * from {table.quoted()} limit 0").to_arrow_table().schema
        return {field.name: type_family(field.type) for field in schema}

    def column_type(self, data_type: pa.DataType) -> str:
        import pyarrow as pa

        if pa.types.is_null(data_type):
            return "VARCHAR"  # as the select list of a write casts it
        return str(self.con.from_arrow(pa.table({"c": pa.nulls(0, data_type)})).types[0])

    def table_names(self, schema: str | None) -> list[str]:
        found = self.con.sql(
            "select table_name from information_schema.tables where table_catalog = "
            "current_database() and lower(table_schema) = lower($schema)",
            params={"schema": schema or "main"},
        ).fetchall()
        return [row[0] for row in found]

    def create(
        self, target: TableName, schema: pa.Schema, source: str, replace: bool,
        keys: Sequence[str],
    ) -> None:
        verb = "create or replace table" if replace else "create table"
        self.run(f"{verb} {target.quoted()} as select * from {source} as s")


def utc(data: T) -> T:
    """Label zone-aware timestamps as UTC (DuckDB labels them with the machine's zone).

    The instants are unchanged; only the zone shown changes, so the cast is free.
    """
    import pyarrow as pa

    if not any(pa.types.is_timestamp(f.type) and f.type.tz not in (None, "UTC")
               for f in data.schema):
        return data
    schema = pa.schema(
        [
            f.with_type(pa.timestamp(f.type.unit, "UTC"))
            if pa.types.is_timestamp(f.type) and f.type.tz
            else f
            for f in data.schema
        ]
    )
    return data.cast(schema)


def _select_list(data: pa.Table, only: Sequence[str] | None = None) -> str:
    """Columns of the registered frame; all-null columns become VARCHAR, not NULL."""
    import pyarrow as pa

    parts = []
    for field in data.schema:
        if only is not None and field.name not in only:
            continue
        column = quote_identifier(field.name, "column name")
        parts.append(
            f"cast({column} as varchar) as {column}" if pa.types.is_null(field.type) else column
        )
    return ", ".join(parts)


def _exists(con: duckdb.DuckDBPyConnection, table: TableName) -> bool:
    rows = con.sql(
        "select count(*) from information_schema.tables where table_catalog = "
        "current_database() and lower(table_schema) = lower($schema) "
        "and lower(table_name) = lower($table)",
        params={"schema": table.schema or "main", "table": table.table},
    ).fetchall()
    return bool(rows and rows[0][0])


def _not_found_message(con: duckdb.DuckDBPyConnection, table: TableName, path: str) -> str:
    rows = con.sql(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() order by 1, 2"
    ).fetchall()
    names = [name if schema == "main" else f"{schema}.{name}" for schema, name in rows]
    listing = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "none"
    return f"Table {table} does not exist in the DuckDB warehouse {path} (tables: {listing})."


@contextlib.contextmanager
def _translate_errors(what: str) -> Iterator[None]:
    """Turn DuckDB's errors into knot's, keeping DuckDB's own words and the statement."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        missing = isinstance(exc, duckdb.CatalogException) and "does not exist" in str(exc)
        error = TableNotFoundError if missing else WarehouseError
        raise error(f"DuckDB said: {exc}\nWhile running: {what[:500]}") from exc
