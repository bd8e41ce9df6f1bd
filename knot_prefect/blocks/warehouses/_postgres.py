"""The PostgreSQL fast path of ``SqlWarehouse``: ADBC (binary COPY) for every operation.

Writes run in one transaction on one connection:

- ``append``: binary COPY straight into the table when the frame's Arrow types are
  exactly the table's column types, otherwise COPY into a temporary table and one
  ``INSERT ... SELECT`` (the server casts, e.g. ``bigint`` into ``integer``).
- ``upsert`` into a table with a unique index on the keys: ``INSERT ... ON CONFLICT``
  from a temporary table, rows in key order, without a table lock (concurrent upserters
  run side by side; the index keeps every key once). Where an upsert is
  indistinguishable from deleting the matched rows and inserting the frame (see
  :meth:`_AdbcSession.replaces_rows`), the keys alone are copied, the matched rows
  deleted and the frame copied straight into the table; when the frame is about the
  table's size, the table is built anew instead (:meth:`_AdbcSession.rebuilds`).
- ``upsert`` into a table without such an index: one ``MERGE`` under a table lock
  (``SHARE ROW EXCLUSIVE``: concurrent upserters take turns, readers go on).
- ``replace``: COPY into a new staging table, then ``DROP`` + ``RENAME`` before
  ``COMMIT``: readers see the old table or the new one, never a half-written one.

A process killed mid-write closes its connection; PostgreSQL then rolls the whole
transaction back, staging tables included.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import (
    DriverPath,
    bind_named,
    check_columns_exist,
    column_kind,
    is_lost_connection,
    is_write_conflict,
    no_column_type,
    on_conflict_sql,
    staging_name,
    unique_key_name,
)
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    TableNotFoundError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
from knot_prefect.blocks.warehouses.sql_session import SqlSession
from knot_prefect.blocks.warehouses.staging import plan_publish, publish

if TYPE_CHECKING:
    import pyarrow as pa
    from adbc_driver_manager.dbapi import Connection, Cursor

    from knot_prefect.blocks.warehouses.base import Evolve

MAX_IDLE_CONNECTIONS = 4
WRITE_ATTEMPTS = 3  # a write that lost a deadlock to another writer is run again
MERGE_WORK_MEM = "256MB"  # per upsert transaction; PostgreSQL's default of 4MB spills to disk
# For the sorted build of a rebuilt table's unique index: the default (64MB, shared by
# the parallel workers) spills the sort of 1.5M keys to disk, and the build costs 1.5x.
INDEX_BUILD_MEM = "256MB"
# An upsert whose frame (in Arrow bytes) is at least this share of the table's size
# builds the table anew (see ``_AdbcSession.rebuilds``).
REBUILD_SHARE = 0.5

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


class PostgresAdbc(DriverPath):
    """PostgreSQL operations over one ADBC connection per call.

    Args:
        uri: A libpq URI, password included (never logged: see ``describe``).
        describe: The server described without secrets, for error messages.
        redact: Removes secrets from a driver's error text.
    """

    def __init__(self, uri: str, describe: str, redact: Callable[[str], str]) -> None:
        super().__init__(describe, redact)
        self._uri = uri
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
            raise self.connect_failed(exc) from None

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
                raise self.connection_lost(said) from None
            if is_write_conflict(exc.sqlstate):
                raise ConcurrentWriteError(
                    f"{said}. Another writer changed the same rows at once; nothing of "
                    "this write was kept: write again."
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
            typnames = _AdbcSession(cur).typnames(table)
            if not typnames and not _exists(cur, table):  # a table may have no columns
                raise TableNotFoundError(
                    f"Table {table} does not exist in {self._describe} "
                    f"(tables: {_listing(cur, table.schema)})."
                )
            check_columns_exist(columns or [], list(typnames), str(table))
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
        self, data: pa.Table, name: TableName, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        data = ingest_frame(data)
        self.refuse_unsupported_types(data, pg_type)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.connect() as con:
                    with con.cursor() as cur:
                        session = _AdbcSession(cur, frame=data)
                        plan = plan_publish(session, name, data.schema, str(name), mode,
                                            keys, evolve, self._describe)
                        publish(session, name, data.schema, session.frame_source, plan)
                    con.commit()
                break
            except ConcurrentWriteError:
                # The server rolled the whole transaction back: running it again is safe.
                if attempt == WRITE_ATTEMPTS:
                    raise
        return data.num_rows


class PostgresSession(SqlSession):
    """PostgreSQL's hooks for staged writes, over any driver that runs plain SQL."""

    def families(self, table: TableName) -> dict[str, str]:
        return {name: _FAMILY.get(typname, "other")
                for name, typname in self.typnames(table).items()}

    def typnames(self, table: TableName) -> dict[str, str]:
        """The table's columns and their ``pg_type.typname``; empty when there is no table."""
        found = self.rows(
            "select a.attname, t.typname from pg_attribute a join pg_type t on "
            "t.oid = a.atttypid where a.attnum > 0 and not a.attisdropped and a.attrelid = "
            f"(select c.oid from pg_class c where c.oid = to_regclass({_literal(table.quoted())}) "
            "and c.relkind in ('r', 'p', 'v', 'm', 'f')) order by a.attnum"
        )
        return dict(found)

    def column_type(self, data_type: pa.DataType) -> str:
        return pg_type(data_type)

    def table_names(self, schema: str | None) -> list[str]:
        where = _literal(schema) if schema else "current_schema()"
        found = self.rows(
            f"select table_name from information_schema.tables where table_schema = {where}"
        )
        return [row[0] for row in found]

    def lock_new_table(self, table: TableName) -> bool:
        # Two first writers would both create the table: the second waits for the
        # first to commit, then sees its table.
        lock_key = _literal(f"knot {table.quoted()}")
        self.run(f"select pg_advisory_xact_lock(hashtextextended({lock_key}, 0))")
        return True

    def create(
        self, target: TableName, schema: pa.Schema, source: str, replace: bool,
        keys: Sequence[str],
    ) -> None:
        if not replace:
            super().create(target, schema, source, replace, keys)
            return
        # Built beside the old table and renamed at the end: until the commit, readers
        # go on reading the old table instead of waiting for the new one's rows.
        replacement = staging_name(target)
        super().create(replacement, schema, source, False, keys)
        self.run(f"drop table {target.quoted()}")
        self.run(f"alter table {replacement.quoted()} rename to "
                 f"{quote_identifier(target.table)}")

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
        # The upsert sorts or hash-joins the whole source: room for this transaction only.
        self.run(at_least("work_mem", MERGE_WORK_MEM))
        if self.has_unique_key(target, keys):
            # The unique index finds each match and arbitrates between concurrent
            # upserters (one waits for the other's key, then updates it): no lock.
            self.run(on_conflict_sql(target.quoted(), source, columns, keys))
            return
        # Two MERGEs at once could both insert a missing key: without a unique index,
        # upserts into one table take turns. Readers are not blocked.
        self.run(f"lock table {target.quoted()} in share row exclusive mode")
        super().upsert(target, source, columns, keys)

    def has_unique_key(self, table: TableName, keys: Sequence[str]) -> bool:
        """Whether a unique index on exactly ``keys`` can arbitrate ``ON CONFLICT``."""
        found = self.rows(
            "select i.indexrelid::bigint, a.attname from pg_index i join pg_attribute a on "
            "a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = "
            f"to_regclass({_literal(table.quoted())}) and i.indisunique and i.indisvalid "
            "and i.indimmediate and i.indpred is null and i.indexprs is null"
        )
        columns: dict[int, set[str]] = {}
        for index, column in found:
            columns.setdefault(index, set()).add(column)
        return set(keys) in columns.values()


class _AdbcSession(PostgresSession):
    """PostgreSQL's hooks over an ADBC cursor, with binary COPY for a frame being written.

    ``frame_source`` names the frame's rows in SQL; they are copied into a temporary
    table (dropped at the commit) only when a statement needs them there. Appending
    into columns of exactly the frame's types copies straight into the target.
    """

    def __init__(self, cur: Cursor, frame: pa.Table | None = None) -> None:
        self.cur = cur
        self._frame = frame
        # Temporary: never logged, never seen by other sessions, gone if the process dies.
        self._frame_table = staging_name(TableName("frame")).table
        self._frame_loaded = False
        # Columns looked up since the last statement that could have changed them:
        # the write's plan and its publishing step then share one catalog query.
        self._typnames: dict[TableName, dict[str, str]] = {}

    @property
    def frame_source(self) -> str:
        """The frame's rows as a source of the publishing step."""
        return quote_identifier(self._frame_table)

    def run(self, sql: str) -> None:
        self._typnames.clear()
        self.cur.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self.cur.execute(sql)
        return list(self.cur.fetchall())

    def typnames(self, table: TableName) -> dict[str, str]:
        if table not in self._typnames:
            self._typnames[table] = super().typnames(table)
        return self._typnames[table]

    def append(self, target: TableName, source: str, columns: Sequence[str]) -> None:
        if self._frame is not None and source == self.frame_source and not self._frame_loaded:
            typnames = self.typnames(target)
            if all(_typname(f.type) == typnames.get(f.name) for f in self._frame.schema):
                _copy(self.cur, target, self._frame)
                return
        super().append(target, self._loaded(source), columns)

    def upsert(
        self, target: TableName, source: str, columns: Sequence[str], keys: Sequence[str]
    ) -> None:
        if (self._frame is not None and source == self.frame_source and not self._frame_loaded
                and self.has_unique_key(target, keys) and self.replaces_rows(target)):
            if self.rebuilds(target):
                self._rebuild(target, keys)
            else:
                self._delete_then_copy(target, keys)
            return
        source = self._loaded(source)
        if source == self.frame_source and not self.has_unique_key(target, keys):
            self.run(f"analyze {source}")  # the merge plans its hash join on it
        super().upsert(target, source, columns, keys)

    def replaces_rows(self, target: TableName) -> bool:
        """Whether this upsert may delete the matched rows and insert the frame instead.

        Only where nothing could tell the two apart: the frame holds every column in
        the table's own types; the table is a plain one (no partitions, no children,
        no row security); no user trigger, no rule, no foreign key referencing it, no
        publication (logical replication would send deletes and inserts instead of
        updates); its only unique index is the one on the keys; and this role may
        delete. The checks hold under a ``SHARE ROW EXCLUSIVE`` lock taken without
        waiting, which also keeps other writers out until the commit; if another
        writer holds the table, the lock is let go and the upsert runs
        ``INSERT ... ON CONFLICT`` beside it.
        """
        assert self._frame is not None
        typnames = self.typnames(target)
        if typnames != {f.name: _typname(f.type) for f in self._frame.schema}:
            return False
        table = _literal(target.quoted())
        self.run("savepoint knot_replace")
        # A failed statement would end the transaction: the lock is tried in a block
        # that catches its refusal, and pg_locks says whether it was granted.
        # The body names the table by its oid: a name may hold a dollar sign.
        oid = int(self.rows(f"select to_regclass({table})::oid::bigint")[0][0])
        self.run(
            "do $$ begin execute format('lock table %s in share row exclusive mode nowait', "
            f"{oid}::oid::regclass); exception when lock_not_available then null; end $$"
        )
        found = self.rows(_REPLACES_ROWS.format(table=table))
        if found and found[0][0]:
            return True
        self.run("rollback to savepoint knot_replace")  # lets the lock go
        return False

    def rebuilds(self, target: TableName) -> bool:
        """Whether this upsert builds the table anew instead (see :meth:`_rebuild`).

        Only when the frame is at least about half the table's size (rewriting the
        table's other rows then costs less than keeping its index up to date row by
        row), under the lock :meth:`replaces_rows` took, and only for a table that
        a new one built ``LIKE`` it stands in for completely: owned by this role,
        with no grants, comments, storage options, identity or generated columns,
        and nothing depending on it but its toast table, its row type and knot's
        unique index (no view, sequence, default, constraint, policy or statistics).
        """
        assert self._frame is not None
        found = self.rows(_REBUILDS.format(table=_literal(target.quoted()),
                                           index=_literal(unique_key_name(target))))
        if not found or not found[0][1]:
            return False
        return bool(self._frame.nbytes >= REBUILD_SHARE * int(found[0][0]))

    def _rebuild(self, target: TableName, keys: Sequence[str]) -> None:
        """The upsert as a new table: the old rows whose keys the frame lacks, then the frame.

        Rows go in without an index; the unique index is then built once, sorted,
        and the new table takes the old one's name in the same transaction. Readers
        go on reading the old table until the commit (the drop waits for them).
        """
        assert self._frame is not None
        new = staging_name(target, "new")
        index = staging_name(target, "key").table
        quoted = [quote_identifier(k) for k in keys]
        self.run(at_least("work_mem", MERGE_WORK_MEM))  # the frame's keys, hashed
        self.run(f"create table {new.quoted()} "
                 f"(like {target.quoted()} including all excluding indexes)")
        self.cur.execute(_kept_rows_sql(target, new, self._frame.schema, keys),
                         _key_arrays(self._frame, keys))
        _copy(self.cur, new, self._frame)
        self.run(at_least("maintenance_work_mem", INDEX_BUILD_MEM))
        self.run(f"create unique index {quote_identifier(index)} on {new.quoted()} "
                 f"({', '.join(quoted)})")
        self.run(f"drop table {target.quoted()}")
        self.run(f"alter table {new.quoted()} rename to {quote_identifier(target.table)}")
        self.run(f"alter index {target.with_table(index).quoted()} rename to "
                 f"{quote_identifier(unique_key_name(target))}")

    def _delete_then_copy(self, target: TableName, keys: Sequence[str]) -> None:
        assert self._frame is not None
        # The keys travel as bound arrays, one per key column: no table of keys to
        # create and fill before the delete.
        self.cur.execute(_delete_keys_sql(target, self._frame.schema, keys),
                         _key_arrays(self._frame, keys))
        _copy(self.cur, target, self._frame)

    def _loaded(self, source: str) -> str:
        """The source, the frame copied into its temporary table first when it is the frame."""
        if self._frame is not None and source == self.frame_source and not self._frame_loaded:
            self.run(f"create temporary table {source} ({_column_ddl(self._frame.schema)}) "
                     "on commit drop")
            self.cur.adbc_ingest(self._frame_table, self._frame, mode="append", temporary=True)
            self._frame_loaded = True
        return source


# Conditions of :meth:`_AdbcSession.replaces_rows` on the table itself.
_REPLACES_ROWS = """
select c.relkind = 'r' and not c.relrowsecurity
  and exists (select 1 from pg_locks l where l.locktype = 'relation' and l.relation = c.oid
              and l.pid = pg_backend_pid() and l.mode = 'ShareRowExclusiveLock' and l.granted)
  and has_table_privilege(c.oid, 'DELETE')
  and not exists (select 1 from pg_inherits i where i.inhparent = c.oid)
  and not exists (select 1 from pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal)
  and not exists (select 1 from pg_constraint f where f.confrelid = c.oid and f.contype = 'f')
  and not exists (select 1 from pg_rules r where r.schemaname = n.nspname
                  and r.tablename = c.relname)
  and not exists (select 1 from pg_publication_tables p where p.schemaname = n.nspname
                  and p.tablename = c.relname)
  and (select count(*) from pg_index x where x.indrelid = c.oid and x.indisunique) = 1
  and not exists (select 1 from pg_constraint e where e.conrelid = c.oid and e.contype = 'x')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = to_regclass({table})
"""


# Whether :meth:`_AdbcSession._rebuild` may stand in for the upsert, beyond the
# conditions of ``_REPLACES_ROWS``; the table's size in bytes first.
_REBUILDS = """
select pg_relation_size(c.oid),
  c.relowner = (select r.oid from pg_roles r where r.rolname = current_user)
  and c.relacl is null and c.reloptions is null and c.reltablespace = 0
  and c.relpersistence = 'p' and c.relreplident = 'd' and not c.relispartition
  and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid)
  and not exists (select 1 from pg_description d where d.objoid = c.oid
                  and d.classoid = 'pg_class'::regclass)
  and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                  and not a.attisdropped and (a.attidentity <> '' or a.attgenerated <> ''
                  or a.attacl is not null or a.attoptions is not null
                  or a.attfdwoptions is not null or coalesce(a.attstattarget, -1) <> -1))
  and (select count(*) from pg_index x where x.indrelid = c.oid) = 1
  and exists (select 1 from pg_index x join pg_class k on k.oid = x.indexrelid
              where x.indrelid = c.oid and k.relname = {index})
  and not exists (select 1 from pg_depend d where d.refclassid = 'pg_class'::regclass
                  and d.refobjid = c.oid and d.deptype <> 'i'
                  and not (d.classid = 'pg_class'::regclass and d.objid = (
                    select x.indexrelid from pg_index x join pg_class k
                    on k.oid = x.indexrelid where x.indrelid = c.oid and k.relname = {index})))
from pg_class c
where c.oid = to_regclass({table})
"""


def _delete_keys_sql(target: TableName, schema: pa.Schema, keys: Sequence[str]) -> str:
    """Delete the target's rows whose keys are in the bound arrays ``$1``, ``$2``, ...

    Examples:
        >>> import pyarrow as pa
        >>> schema = pa.schema([("id", pa.int64()), ("day", pa.date32())])
        >>> _delete_keys_sql(TableName("t"), schema, ["id"])
        'delete from "t" where "id" = any($1::bigint[])'
        >>> print(_delete_keys_sql(TableName("t"), schema, ["id", "day"]))
        delete from "t" as t using unnest($1::bigint[], $2::date[]) as k("id", "day") \
where t."id" = k."id" and t."day" = k."day"
    """
    arrays = [f"${i}::{pg_type(schema.field(k).type)}[]" for i, k in enumerate(keys, 1)]
    quoted = [quote_identifier(k) for k in keys]
    if len(keys) == 1:
        # One key: the unique index is walked once per value, with no join to plan.
        return f"delete from {target.quoted()} where {quoted[0]} = any({arrays[0]})"
    matched = " and ".join(f"t.{q} = k.{q}" for q in quoted)
    return (f"delete from {target.quoted()} as t using unnest({', '.join(arrays)}) "
            f"as k({', '.join(quoted)}) where {matched}")


def _kept_rows_sql(
    target: TableName, new: TableName, schema: pa.Schema, keys: Sequence[str]
) -> str:
    """Copy the target's rows whose keys are not in the bound arrays ``$1``, ... into ``new``.

    Examples:
        >>> import pyarrow as pa
        >>> schema = pa.schema([("id", pa.int64()), ("day", pa.date32())])
        >>> _kept_rows_sql(TableName("t"), TableName("n"), schema, ["id"])
        'insert into "n" select o.* from "t" as o where coalesce(o."id" <> all($1::bigint[]), true)'
        >>> print(_kept_rows_sql(TableName("t"), TableName("n"), schema, ["id", "day"]))
        insert into "n" select o.* from "t" as o where not exists (select from \
unnest($1::bigint[], $2::date[]) as k("id", "day") where k."id" = o."id" and k."day" = o."day")
    """
    arrays = [f"${i}::{pg_type(schema.field(k).type)}[]" for i, k in enumerate(keys, 1)]
    quoted = [quote_identifier(k) for k in keys]
    head = f"insert into {new.quoted()} select o.* from {target.quoted()} as o where "
    if len(keys) == 1:
        # One key: the array is hashed once; a row whose key is null is kept. Inside
        # coalesce() the planner does not estimate the condition's selectivity: that
        # estimate would visit each of the frame's keys (0.2 s for 1M of them).
        return f"{head}coalesce(o.{quoted[0]} <> all({arrays[0]}), true)"
    matched = " and ".join(f"k.{q} = o.{q}" for q in quoted)
    return (f"{head}not exists (select from unnest({', '.join(arrays)}) "
            f"as k({', '.join(quoted)}) where {matched})")


def _key_arrays(frame: pa.Table, keys: Sequence[str]) -> pa.RecordBatch:
    """One row binding each key column of the frame as one array parameter."""
    import pyarrow as pa

    lists = []
    for key in keys:
        values = frame.column(key).combine_chunks()
        offsets = pa.array([0, len(values)], pa.int32())
        lists.append(pa.ListArray.from_arrays(offsets, values))
    return pa.record_batch(lists, names=[f"k{i}" for i in range(len(keys))])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def at_least(setting: str, size: str) -> str:
    """SQL raising a memory setting to ``size`` for the transaction, never lowering it.

    A server or role configured with more keeps its own value; the change ends with
    the transaction, like ``SET LOCAL``.

    Examples:
        >>> print(at_least("work_mem", "256MB"))
        select set_config('work_mem', greatest(pg_size_bytes(current_setting('work_mem')), \
pg_size_bytes('256MB')) / 1024 || 'kB', true)
    """
    return (f"select set_config('{setting}', greatest(pg_size_bytes(current_setting("
            f"'{setting}')), pg_size_bytes('{size}')) / 1024 || 'kB', true)")


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
