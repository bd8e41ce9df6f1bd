"""The PostgreSQL fast path of ``SqlWarehouse``: ADBC (binary COPY) for every operation.

Writes run in one transaction on one connection:

- ``append``: binary COPY straight into the table when the frame's Arrow types are
  exactly the table's column types, otherwise COPY into a temporary table and one
  ``INSERT ... SELECT`` (the server casts, e.g. ``bigint`` into ``integer``).
- ``upsert``: COPY into a temporary table, then one ``MERGE`` under a table lock
  (``SHARE ROW EXCLUSIVE``: concurrent upserters take turns, readers go on).
- ``replace``: COPY into a new staging table, then ``DROP`` + ``RENAME`` before
  ``COMMIT``: readers see the old table or the new one, never a half-written one.

A process killed mid-write closes its connection; PostgreSQL then rolls the whole
transaction back, staging tables included.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import (
    bind_named,
    check_columns_exist,
    column_kind,
    is_lost_connection,
    is_transient_connect_failure,
    merge_sql,
    no_column_type,
    plan_write,
    staging_name,
    unique_key_name,
)
from knot_prefect.blocks.warehouses.base import (
    TableNotFoundError,
    WarehouseConnectionError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
from knot_prefect.blocks.warehouses.staging import SqlSession

if TYPE_CHECKING:
    import pyarrow as pa
    from adbc_driver_manager.dbapi import Connection, Cursor

MAX_IDLE_CONNECTIONS = 4
MERGE_WORK_MEM = "256MB"  # per upsert transaction; PostgreSQL's default of 4MB spills to disk

# PostgreSQL type (pg_type.typname) that ADBC's binary COPY writes for each Arrow type
# left by :func:`ingest_frame`; a column of exactly that type takes a direct COPY.
_TYPNAME = {
    "bool": "bool",
    "int16": "int2",
    "int32": "int4",
    "int64": "int8",
    "float": "float4",
    "double": "float8",
    "string": "text",
    "binary": "bytea",
    "date32[day]": "date",
    "time64[us]": "time",
}


# PostgreSQL's column type for each ``column_kind`` (decimals keep their precision).
_PG_TYPES = {
    "boolean": "boolean", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "uint64": "numeric(20, 0)", "float32": "real", "float64": "double precision",
    "string": "text", "binary": "bytea", "date": "date", "time": "time",
    "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
    "interval": "interval",
}


def pg_type(data_type: pa.DataType) -> str:
    """The PostgreSQL column type knot creates for an Arrow type (see docs/warehouses.md).

    Raises:
        SchemaMismatchError: For nested types (lists, structs, maps).
    """
    kind = column_kind(data_type)
    if kind == "decimal":
        return f"numeric({data_type.precision}, {data_type.scale})"  # type: ignore[attr-defined]
    if kind is None:
        raise no_column_type(data_type, "PostgreSQL")
    return _PG_TYPES[kind]


def ingest_frame(data: pa.Table) -> pa.Table:
    """Cast a frame to the Arrow types ADBC's binary COPY writes 1:1 (see ``_TYPNAME``)."""
    import pyarrow as pa

    # The Arrow type ADBC writes for each ``column_kind`` whose types it does not take.
    ingest = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
              "uint64": pa.decimal128(20, 0), "float32": pa.float32(), "string": pa.string(),
              "date": pa.date32(), "time": pa.time64("us")}
    fields = []
    for field in data.schema:
        kind = column_kind(field.type) or ""
        if kind.startswith("timestamp"):
            t = pa.timestamp("us", field.type.tz)  # type: ignore[attr-defined]
        else:
            t = ingest.get(kind, field.type)
        fields.append(pa.field(field.name, t))
    schema = pa.schema(fields)
    # PostgreSQL keeps microseconds: nanoseconds are truncated, as the server would.
    return data if schema == data.schema else data.cast(schema, safe=False)


def _typname(data_type: pa.DataType) -> str | None:
    import pyarrow as pa

    if pa.types.is_timestamp(data_type):
        return "timestamptz" if data_type.tz else "timestamp"
    if pa.types.is_decimal(data_type):
        return "numeric"
    return _TYPNAME.get(str(data_type))


def fix_numeric(table: pa.Table) -> pa.Table:
    """Turn ADBC's opaque ``numeric`` columns (strings) into Arrow decimals.

    ``numeric(p, s)`` becomes ``decimal128(p, s)``; an unconstrained ``numeric``
    takes the largest scale found in the data (``float64`` if it holds NaN).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(table.schema):
        meta = field.metadata or {}
        if meta.get(b"POSTGRESQL:type") != b"numeric":
            continue
        column = table.column(index)
        if isinstance(column.type, pa.ExtensionType) or hasattr(column.type, "storage_type"):
            column = pa.chunked_array(
                [chunk.storage for chunk in column.chunks], column.type.storage_type
            )
        typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
        if typmod >= 4:
            precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
        else:
            precision, scale = 38, _max_scale(column)
        target: pa.DataType = (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
        try:
            converted = pc.cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            converted = pc.cast(column, pa.float64())
        table = table.set_column(index, pa.field(field.name, converted.type), converted)
    return table


def _max_scale(column: pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    dot = pc.find_substring(column, ".")
    lengths = pc.utf8_length(column)
    digits = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(lengths, dot), 1))
    largest = pc.max(digits).as_py()
    return min(int(largest or 0), 38)


class PostgresAdbc:
    """PostgreSQL operations over one ADBC connection per call.

    Args:
        uri: A libpq URI, password included (never logged: see ``describe``).
        describe: The server described without secrets, for error messages.
        redact: Removes secrets from a driver's error text.
    """

    def __init__(self, uri: str, describe: str, redact: Any) -> None:
        self._uri = uri
        self._describe = describe
        self._redact = redact
        # Opening a connection costs a round trip and authentication (about 0.1 s):
        # a few idle ones are kept for the next call, each after a ROLLBACK.
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """An ADBC connection in a transaction (rolled back unless committed).

        A connection that saw any error is closed, never reused.
        """
        con = self._acquire()
        try:
            with self._errors():
                yield con
        except BaseException:
            with contextlib.suppress(Exception):
                con.close()
            raise
        try:
            con.rollback()
        except Exception:
            with contextlib.suppress(Exception):
                con.close()
            return
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(con)
                return
        con.close()

    def _acquire(self) -> Connection:
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as pgdb

        while True:
            with self._lock:
                if not self._idle:
                    break
                con = self._idle.pop()
            # A pooled connection may have been ended by the server (a restart, an
            # administrator) since it was last used: one round trip finds out.
            if _alive(con):
                return con
            with contextlib.suppress(Exception):
                con.close()
        try:
            return pgdb.connect(self._uri)
        except adbc_driver_manager.Error as exc:
            message = self._redact(str(exc)).strip()
            raise WarehouseConnectionError(
                f"Cannot connect to {self._describe}: {message} "
                "Check the URL, the user and the password of the block.",
                transient=is_transient_connect_failure(message),
            ) from None

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            with contextlib.suppress(Exception):
                con.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import adbc_driver_manager

        try:
            yield
        except adbc_driver_manager.Error as exc:
            message = self._redact(str(exc)).strip()
            said = f"PostgreSQL ({self._describe}) said: {message}"
            if is_lost_connection(exc.sqlstate, message):
                raise WarehouseConnectionError(
                    f"{said} The connection was lost; the operation was rolled back and may "
                    "be retried."
                ) from None
            error = TableNotFoundError if "SQLSTATE: 42P01" in message else WarehouseError
            raise error(said) from None

    # -- reads -----------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None) -> pa.Table:
        sql, values = bind_named(sql, params, "numeric_dollar")
        with self.connect() as con, con.cursor() as cur:
            cur.execute(sql, values or None)
            return fix_numeric(cur.fetch_arrow_table())

    def read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        sql, values = bind_named(sql, params, "numeric_dollar")
        with self.connect() as con, con.cursor() as cur:
            if not values:
                # COPY ... TO STDOUT streams: memory stays at a few batches.
                cur.execute(sql)
                for batch in cur.fetch_record_batch():
                    yield from _rechunk(batch, batch_rows)
                return
            # Bound values rule COPY out: page through a server-side cursor instead.
            cursor_name = "_knot_batches"
            cur.execute(f"declare {cursor_name} no scroll cursor for {sql}", values)
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            while True:
                cur.execute(f"fetch forward {int(batch_rows)} from {cursor_name}")
                page = fix_numeric(cur.fetch_arrow_table())
                if page.num_rows == 0:
                    return
                yield from page.to_batches(max_chunksize=batch_rows)

    def read_table_arrow(self, table: TableName, columns: Sequence[str] | None) -> pa.Table:
        selected = ", ".join(quote_identifier(c, "column name") for c in columns or []) or "*"
        with self.connect() as con, con.cursor() as cur:
            if not _exists(cur, table):
                raise TableNotFoundError(
                    f"Table {table} does not exist in {self._describe} "
                    f"(tables: {_listing(cur, table.schema)})."
                )
            check_columns_exist(columns or [], list(_columns(cur, table)), str(table))
            cur.execute(f"select {selected} from {table.quoted()}")
            return fix_numeric(cur.fetch_arrow_table())

    # -- other -----------------------------------------------------------------------
    def table_exists(self, table: TableName) -> bool:
        with self.connect() as con, con.cursor() as cur:
            return _exists(cur, table)

    def execute(self, sql: str, params: Mapping[str, Any] | None) -> None:
        sql, values = bind_named(sql, params, "numeric_dollar")
        with self.connect() as con:
            with con.cursor() as cur:
                cur.execute(sql, values or None)
            con.commit()

    def server_version(self) -> str:
        with self.connect() as con, con.cursor() as cur:
            cur.execute("select version()")
            row = cur.fetchone()
        return str(row[0]) if row else "unknown"

    @contextlib.contextmanager
    def session(self) -> Iterator[SqlSession]:
        """A staged-write session in one transaction, committed when the block ends."""
        with self.connect() as con:
            with con.cursor() as cur:
                yield _AdbcSession(cur)
            con.commit()

    # -- writes ----------------------------------------------------------------------
    def write(
        self, data: pa.Table, name: TableName, mode: str, keys: list[str], evolve: bool
    ) -> int:
        data = ingest_frame(data)
        for field in data.schema:
            pg_type(field.type)  # refuse unsupported types before connecting
        with self.connect() as con:
            with con.cursor() as cur:
                _write_in_transaction(cur, data, name, mode, keys, evolve, self._describe)
            con.commit()
        return data.num_rows


def _write_in_transaction(
    cur: Cursor,
    data: pa.Table,
    name: TableName,
    mode: str,
    keys: list[str],
    evolve: bool,
    where: str,
) -> None:
    target = name.quoted()
    if name.schema:
        cur.execute(f"create schema if not exists {quote_identifier(name.schema)}")
    typnames = _columns(cur, name)
    if not typnames:
        # Two first writers would both create the table: the second waits for the
        # first to commit (the lock ends with the transaction), then sees its table.
        cur.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", (f"knot {target}",))
        typnames = _columns(cur, name)
    families = {column: _FAMILY.get(typname, "other") for column, typname in typnames.items()}
    plan = plan_write(data, str(name), mode, keys, evolve, families, where)
    if not plan.exists:
        cur.execute(f"create table {target} ({_column_ddl(data.schema)})")
        if mode == "upsert":
            # A unique key: whatever writes to the table later can never add a key twice.
            cur.execute(
                f"create unique index {quote_identifier(unique_key_name(name))} on {target} "
                f"({', '.join(quote_identifier(k) for k in keys)})"
            )
        _copy(cur, name, data)
        return
    if mode == "replace":
        replacement = staging_name(name)
        cur.execute(f"create table {replacement.quoted()} ({_column_ddl(data.schema)})")
        _copy(cur, replacement, data)
        cur.execute(f"drop table {target}")
        cur.execute(
            f"alter table {replacement.quoted()} rename to {quote_identifier(name.table)}"
        )
        return
    for column in plan.new_columns:
        field = data.schema.field(column)
        cur.execute(
            f"alter table {target} add column {quote_identifier(column)} {pg_type(field.type)}"
        )
        typnames[column] = _typname(field.type) or ""
    direct = all(_typname(f.type) == typnames.get(f.name) for f in data.schema)
    if mode == "append" and direct:
        _copy(cur, name, data)
        return
    stage_name = staging_name(name).table
    stage = quote_identifier(stage_name)
    # Temporary: never logged, never seen by other sessions, gone if the process dies.
    cur.execute(f"create temporary table {stage} ({_column_ddl(data.schema)})")
    cur.adbc_ingest(stage_name, data, mode="append", temporary=True)
    columns = ", ".join(quote_identifier(c) for c in data.column_names)
    if mode == "append":
        cur.execute(f"insert into {target} ({columns}) select {columns} from {stage}")
    else:
        cur.execute(f"analyze {stage}")
        # The upsert hash-joins the whole frame: give it room for this transaction only.
        cur.execute(f"set local work_mem = '{MERGE_WORK_MEM}'")
        # Two MERGEs at once could both insert a missing key (or, with a unique key,
        # fail on it): upserts into one table take turns. Readers are not blocked; the
        # stages were loaded in parallel.
        cur.execute(f"lock table {target} in share row exclusive mode")
        cur.execute(merge_sql(target, stage, data.column_names, keys))
    cur.execute(f"drop table {stage}")


class PostgresSession(SqlSession):
    """PostgreSQL's hooks for staged writes, over any driver that runs plain SQL."""

    def families(self, table: TableName) -> dict[str, str]:
        found = self.rows(
            "select a.attname, t.typname from pg_attribute a join pg_type t on "
            "t.oid = a.atttypid where a.attnum > 0 and not a.attisdropped and a.attrelid = "
            f"(select c.oid from pg_class c where c.oid = to_regclass({_literal(table.quoted())}) "
            "and c.relkind in ('r', 'p', 'v', 'm', 'f')) order by a.attnum"
        )
        return {name: _FAMILY.get(typname, "other") for name, typname in found}

    def column_type(self, data_type: pa.DataType) -> str:
        return pg_type(data_type)

    def table_names(self, schema: str | None) -> list[str]:
        where = _literal(schema) if schema else "current_schema()"
        found = self.rows(
            f"select table_name from information_schema.tables where table_schema = {where}"
        )
        return [row[0] for row in found]

    def lock_new_table(self, table: TableName) -> None:
        if not self.families(table):
            # Two first writers would both create the table: the second waits for the
            # first to commit, then sees its table.
            lock_key = _literal(f"knot {table.quoted()}")
            self.rows(f"select pg_advisory_xact_lock(hashtextextended({lock_key}, 0))")

    def after_create(self, target: TableName, keys: Sequence[str]) -> None:
        if keys:
            # A unique key: whatever writes to the table later can never add a key twice.
            self.run(
                f"create unique index {quote_identifier(unique_key_name(target))} on "
                f"{target.quoted()} ({', '.join(quote_identifier(k) for k in keys)})"
            )

    def upsert(
        self, target: TableName, source: str, columns: Sequence[str], keys: Sequence[str]
    ) -> None:
        self.run(f"set local work_mem = '{MERGE_WORK_MEM}'")
        # Upserts into one table take turns (see the module's docstring); readers go on.
        self.run(f"lock table {target.quoted()} in share row exclusive mode")
        super().upsert(target, source, columns, keys)


class _AdbcSession(PostgresSession):
    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def run(self, sql: str) -> None:
        self.cur.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self.cur.execute(sql)
        return list(self.cur.fetchall())


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _copy(cur: Cursor, name: TableName, data: pa.Table) -> None:
    cur.adbc_ingest(name.table, data, mode="append", db_schema_name=name.schema)


def _column_ddl(schema: pa.Schema) -> str:
    return ", ".join(f"{quote_identifier(f.name)} {pg_type(f.type)}" for f in schema)


_FAMILY = {
    **dict.fromkeys(["int2", "int4", "int8"], "integer"),
    **dict.fromkeys(["float4", "float8"], "float"),
    "numeric": "decimal",
    "bool": "boolean",
    **dict.fromkeys(["text", "varchar", "bpchar", "name", "citext"], "string"),
    "bytea": "binary",
    **dict.fromkeys(["timestamp", "timestamptz"], "timestamp"),
    "date": "date",
    **dict.fromkeys(["time", "timetz"], "time"),
}


def _rechunk(batch: pa.RecordBatch, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    table = fix_numeric(pa.Table.from_batches([batch]))
    yield from table.to_batches(max_chunksize=batch_rows)


_RELATION = (
    "from pg_class c where c.oid = to_regclass($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
)


def _exists(cur: Cursor, table: TableName) -> bool:
    cur.execute(f"select count(*) {_RELATION}", (table.quoted(),))
    row = cur.fetchone()
    return bool(row and row[0])


def _columns(cur: Cursor, table: TableName) -> dict[str, str]:
    """The table's columns and their ``pg_type.typname``; empty when there is no table."""
    cur.execute(
        "select a.attname, t.typname from pg_attribute a join pg_type t on t.oid = a.atttypid "
        f"where a.attnum > 0 and not a.attisdropped and a.attrelid = (select c.oid {_RELATION}) "
        "order by a.attnum",
        (table.quoted(),),
    )
    return {name: typname for name, typname in cur.fetchall()}


def _alive(con: Connection) -> bool:
    try:
        with con.cursor() as cur:
            cur.execute("select 1")
            cur.fetchall()
        con.rollback()
        return True
    except Exception:
        return False


def _schema_filter(schema: str | None) -> tuple[str, tuple[str, ...]]:
    # A null parameter has no type to bind, so the current schema is spelled out.
    if schema is None:
        return "table_schema = current_schema()", ()
    return "table_schema = $1", (schema,)


def _listing(cur: Cursor, schema: str | None) -> str:
    where, values = _schema_filter(schema)
    cur.execute(
        f"select table_name from information_schema.tables where {where} order by 1 limit 21",
        values or None,
    )
    names = [row[0] for row in cur.fetchall()]
    return (", ".join(names[:20]) + (" ..." if len(names) > 20 else "")) or "none"
