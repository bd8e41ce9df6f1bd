"""The portable path of ``SqlWarehouse``: SQLAlchemy Core for any dialect.

Every write runs in one transaction (``engine.begin()``). Where the database keeps
DDL inside transactions (PostgreSQL, SQLite with the driver's implicit transactions
turned off below), ``replace`` builds a staging table and swaps it in before
``COMMIT``. MySQL commits DDL implicitly, so there the swap is one atomic
``RENAME TABLE``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import (
    DriverPath,
    bind_named,
    check_columns_exist,
    check_compatible,
    column_kind,
    is_lost_connection,
    is_write_conflict,
    no_column_type,
    staging_name,
    unique_key_name,
)
from knot_prefect.blocks.warehouses._postgres import PostgresSession
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    Evolve,
    TableNotFoundError,
    WarehouseError,
    table_exists_error,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, validate_identifier
from knot_prefect.blocks.warehouses.sql_session import SqlSession

if TYPE_CHECKING:
    import pyarrow as pa
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

INSERT_CHUNK_ROWS = 10_000


def sa_type(data_type: pa.DataType) -> Any:
    """The SQLAlchemy column type knot creates for an Arrow type.

    Raises:
        SchemaMismatchError: For nested types (lists, structs, maps).
    """
    import sqlalchemy as sa

    kind = column_kind(data_type)
    if kind == "decimal":
        return sa.Numeric(data_type.precision, data_type.scale)  # type: ignore[attr-defined]
    types: dict[str, Any] = {
        "boolean": sa.Boolean, "int16": sa.SmallInteger, "int32": sa.Integer,
        "int64": sa.BigInteger, "uint64": lambda: sa.Numeric(20, 0), "float32": sa.Float,
        "float64": sa.Double, "string": sa.Text, "binary": sa.LargeBinary, "date": sa.Date,
        "time": sa.Time, "timestamp": sa.DateTime,
        "timestamptz": lambda: sa.DateTime(timezone=True), "interval": sa.Interval,
    }
    if kind is None:
        raise no_column_type(data_type, "SQL")
    return types[kind]()


def sa_family(column_type: Any) -> str:
    """The type family (see ``type_family``) of a reflected SQLAlchemy column type."""
    import sqlalchemy as sa

    checks = [
        (sa.Boolean, "boolean"),
        (sa.Integer, "integer"),
        (sa.Float, "float"),
        (sa.Numeric, "decimal"),
        (sa.String, "string"),
        (sa.LargeBinary, "binary"),
        (sa.DateTime, "timestamp"),
        (sa.Date, "date"),
        (sa.Time, "time"),
    ]
    for kind, family in checks:
        if isinstance(column_type, kind):
            return family
    return "other"


def rows_to_arrow(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Build an Arrow table from DB-API rows, inferring each column's type."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Dynamically typed stores (SQLite) can mix types in a column.
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
    return pa.Table.from_arrays(arrays, names=list(names))


def make_engine(url: Any) -> Engine:
    """An engine for ``url``; on SQLite, DDL joins the write's transaction."""
    import sqlalchemy as sa

    # pre_ping: a pooled connection the server ended (a restart) is replaced, not used.
    engine = sa.create_engine(url, hide_parameters=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        # pysqlite only opens transactions before DML; take over so that
        # CREATE/DROP/ALTER are rolled back with the rest of a failed write.
        @sa.event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


class SqlAlchemyOps(DriverPath):
    """Warehouse operations over a SQLAlchemy engine.

    Args:
        engine: The engine (its URL holds the password; errors are redacted).
        describe: The database described without secrets, for error messages.
        redact: Removes secrets from a driver's error text.
    """

    def __init__(self, engine: Engine, describe: str, redact: Callable[[str], str]) -> None:
        super().__init__(describe, redact)
        self.engine = engine

    @contextlib.contextmanager
    def connect(self, transaction: bool = False) -> Iterator[Connection]:
        """A connection, optionally inside a transaction committed on success."""
        import sqlalchemy.exc

        try:
            context = self.engine.begin() if transaction else self.engine.connect()
            conn = context.__enter__()
        except sqlalchemy.exc.DBAPIError as exc:
            raise self.connect_failed(exc.orig or exc) from None
        try:
            yield conn
        except sqlalchemy.exc.DBAPIError as exc:
            context.__exit__(type(exc), exc, exc.__traceback__)
            message = self._message(exc)
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if exc.connection_invalidated or is_lost_connection(sqlstate, message):
                raise self.connection_lost(f"{self._describe} said: {message}") from None
            if is_write_conflict(sqlstate):
                raise ConcurrentWriteError(
                    f"{self._describe} said: {message}. Another writer changed the same "
                    "rows at once; nothing of this write was kept: write again."
                ) from None
            missing = any(
                marker in message
                for marker in ("no such table", "does not exist", "doesn't exist")
            )
            error = TableNotFoundError if missing else WarehouseError
            raise error(f"{self._describe} said: {message}") from None
        except BaseException as exc:
            context.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            context.__exit__(None, None, None)

    def _message(self, exc: Exception) -> str:
        original = getattr(exc, "orig", None) or exc
        return self._redact(str(original)).strip()

    # -- reads -----------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None) -> pa.Table:
        import pyarrow as pa
        import sqlalchemy as sa

        sql, values = bind_named(sql, params, "named_colon")
        with self.connect() as conn:
            result = conn.execute(sa.text(sql), values)
            if not result.returns_rows:
                return pa.table({})
            return rows_to_arrow(list(result.keys()), result.fetchall())

    def read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        sql, values = bind_named(sql, params, "named_colon")
        with self.connect() as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
            result = streaming.execute(sa.text(sql), values)
            if not result.returns_rows:
                return
            names = list(result.keys())
            for rows in result.partitions(batch_rows):
                yield from rows_to_arrow(names, rows).to_batches(max_chunksize=batch_rows)

    def read_table_arrow(self, table: TableName, columns: Sequence[str] | None) -> pa.Table:
        import sqlalchemy as sa

        with self.connect() as conn:
            reflected = self._reflect(conn, table)
            chosen = [validate_identifier(c, "column name") for c in columns or []]
            check_columns_exist(chosen, reflected.c.keys(), str(table))
            selected = [reflected.c[c] for c in chosen] or list(reflected.c)
            result = conn.execute(sa.select(*selected))
            return rows_to_arrow(list(result.keys()), result.fetchall())

    def _reflect(self, conn: Connection, table: TableName) -> sa.Table:
        import sqlalchemy as sa

        if not sa.inspect(conn).has_table(table.table, schema=table.schema):
            names = sa.inspect(conn).get_table_names(schema=table.schema)
            listing = ", ".join(sorted(names)[:20]) or "none"
            raise TableNotFoundError(
                f"Table {table} does not exist in {self._describe} (tables: {listing})."
            )
        return sa.Table(table.table, sa.MetaData(), schema=table.schema, autoload_with=conn)

    # -- other -----------------------------------------------------------------------
    def table_exists(self, table: TableName) -> bool:
        import sqlalchemy as sa

        with self.connect() as conn:
            return bool(sa.inspect(conn).has_table(table.table, schema=table.schema))

    def execute(self, sql: str, params: Mapping[str, Any] | None) -> None:
        import sqlalchemy as sa

        sql, values = bind_named(sql, params, "named_colon")
        with self.connect(transaction=True) as conn:
            conn.execute(sa.text(sql), values)

    def server_version(self) -> str:
        import sqlalchemy as sa

        with self.connect() as conn:
            conn.execute(sa.text("select 1"))
            info = conn.dialect.server_version_info
        version = ".".join(str(part) for part in info) if info else "unknown version"
        return f"{conn.dialect.name} {version}"

    @contextlib.contextmanager
    def session(self) -> Iterator[SqlSession]:
        """A staged-write session in one transaction, committed when the block ends."""
        with self.connect(transaction=True) as conn:
            if conn.dialect.name == "postgresql":
                yield _PostgresOnSqlAlchemy(conn)
            else:
                yield SqlAlchemySession(conn)

    # -- writes ----------------------------------------------------------------------
    def write(
        self, data: pa.Table, name: TableName, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        data = _utc_timestamps(data)
        self.refuse_unsupported_types(data, sa_type)
        with self.connect(transaction=True) as conn:
            self._write_in_transaction(conn, data, name, mode, keys, evolve)
        return data.num_rows

    def _write_in_transaction(
        self,
        conn: Connection,
        data: pa.Table,
        name: TableName,
        mode: str,
        keys: list[str],
        evolve: Evolve,
    ) -> None:
        import sqlalchemy as sa

        inspector = sa.inspect(conn)
        if name.schema and conn.dialect.name != "sqlite" and not inspector.has_schema(name.schema):
            conn.execute(sa.schema.CreateSchema(name.schema, if_not_exists=True))
        exists = inspector.has_table(name.table, schema=name.schema)
        if not exists and conn.dialect.name == "postgresql":
            # Two first writers would both create the table: the second waits for the
            # first to commit, then sees its table.
            conn.execute(
                sa.text("select pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                {"name": f"knot {name.quoted()}"},
            )
            exists = sa.inspect(conn).has_table(name.table, schema=name.schema)
        if mode == "fail" and exists:
            raise table_exists_error(str(name), self._describe)
        if not exists:
            created = _create(conn, name, data.schema)
            if mode == "upsert":
                # A unique key: a concurrent upsert can never add a key twice.
                sa.Index(
                    unique_key_name(name), *[created.c[k] for k in keys], unique=True
                ).create(conn)
            _insert(conn, created, data)
            return
        if mode == "replace":
            stage = staging_name(name)
            _insert(conn, _create(conn, stage, data.schema), data)
            _swap(conn, stage, name)
            return
        existing = {c["name"]: sa_family(c["type"]) for c in inspector.get_columns(
            name.table, schema=name.schema
        )}
        for column in check_compatible(data.schema, existing, str(name), evolve):
            type_sql = sa_type(data.schema.field(column).type).compile(dialect=conn.dialect)
            conn.execute(sa.text(
                f"alter table {name.quoted(_quote(conn))} add column "
                f"{_q(conn, column)} {type_sql}"
            ))
        target = sa.Table(name.table, sa.MetaData(), schema=name.schema, autoload_with=conn)
        if mode == "append":
            _insert(conn, target, data)
            return
        if conn.dialect.name == "postgresql":
            # UPDATE then INSERT of the missing keys is only right if no other writer
            # adds keys in between: take turns (readers are not blocked).
            conn.execute(sa.text(
                f"lock table {name.quoted()} in share row exclusive mode"
            ))
        stage = staging_name(name)
        staged = _create(conn, stage, data.schema)
        _insert(conn, staged, data)
        sa.Index(f"{stage.table}_k", *[staged.c[k] for k in keys]).create(conn)
        _upsert_from(conn, target, staged, data.column_names, keys)
        staged.drop(conn)


class _OnConnection:
    """Runs a session's SQL on a SQLAlchemy connection, as the driver's own text."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.quote = _quote(conn)

    def run(self, sql: str) -> None:
        self.conn.exec_driver_sql(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.conn.exec_driver_sql(sql).fetchall()]


class SqlAlchemySession(_OnConnection, SqlSession):
    """The portable hooks (SQLite and others): SQLAlchemy's reflection, no ``MERGE``."""

    def families(self, table: TableName) -> dict[str, str]:
        import sqlalchemy as sa

        inspector = sa.inspect(self.conn)
        if not inspector.has_table(table.table, schema=table.schema):
            return {}
        columns = inspector.get_columns(table.table, schema=table.schema)
        return {column["name"]: sa_family(column["type"]) for column in columns}

    def column_type(self, data_type: pa.DataType) -> str:
        return str(sa_type(data_type).compile(dialect=self.conn.dialect))

    def table_names(self, schema: str | None) -> list[str]:
        import sqlalchemy as sa

        return list(sa.inspect(self.conn).get_table_names(schema=schema))

    def create_schema(self, table: TableName) -> None:
        if self.conn.dialect.name != "sqlite":
            super().create_schema(table)

    def upsert(
        self, target: TableName, source: str, columns: Sequence[str], keys: Sequence[str]
    ) -> None:
        """``UPDATE ... FROM`` the matching rows, then insert the others.

        The source's alias is one no table is named (the target keeps its own name).
        """
        full, src = self.full(target), "_knot_source"
        match = " AND ".join(f"{full}.{self.q(k)} = {src}.{self.q(k)}" for k in keys)
        values = ", ".join(
            f"{self.q(c)} = {src}.{self.q(c)}" for c in columns if c not in keys
        )
        if values:
            self.run(f"UPDATE {full} SET {values} FROM {source} AS {src} WHERE {match}")
        listed = ", ".join(self.q(c) for c in columns)
        existing = " AND ".join(f"t.{self.q(k)} = {src}.{self.q(k)}" for k in keys)
        self.run(
            f"INSERT INTO {full} ({listed}) SELECT {listed} FROM {source} AS {src} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {full} AS t WHERE {existing})"
        )


class _PostgresOnSqlAlchemy(_OnConnection, PostgresSession):
    """PostgreSQL's hooks over a SQLAlchemy connection (without ADBC)."""


def _quote(conn: Connection) -> str:
    return "`" if conn.dialect.name == "mysql" else '"'


def _q(conn: Connection, identifier: str) -> str:
    quote = _quote(conn)
    return f"{quote}{validate_identifier(identifier)}{quote}"


def _create(conn: Connection, name: TableName, schema: pa.Schema) -> sa.Table:
    import sqlalchemy as sa

    table = sa.Table(
        name.table,
        sa.MetaData(),
        *[sa.Column(f.name, sa_type(f.type)) for f in schema],
        schema=name.schema,
    )
    table.create(conn)
    return table


def _insert(conn: Connection, table: sa.Table, data: pa.Table) -> None:
    for start in range(0, data.num_rows, INSERT_CHUNK_ROWS):
        rows = data.slice(start, INSERT_CHUNK_ROWS).to_pylist()
        conn.execute(table.insert(), rows)


def _swap(conn: Connection, stage: TableName, name: TableName) -> None:
    import sqlalchemy as sa

    quote = _quote(conn)
    if conn.dialect.name == "mysql":
        old = staging_name(name, "old")
        conn.execute(sa.text(
            f"rename table {name.quoted(quote)} to {old.quoted(quote)}, "
            f"{stage.quoted(quote)} to {name.quoted(quote)}"
        ))
        conn.execute(sa.text(f"drop table {old.quoted(quote)}"))
        return
    conn.execute(sa.text(f"drop table {name.quoted(quote)}"))
    conn.execute(sa.text(
        f"alter table {stage.quoted(quote)} rename to {_q(conn, name.table)}"
    ))


def _upsert_from(
    conn: Connection, target: sa.Table, staged: sa.Table, columns: Sequence[str],
    keys: Sequence[str],
) -> None:
    """Update matching rows, then insert the others: portable SQL, no MERGE needed."""
    import sqlalchemy as sa

    match = sa.and_(*[staged.c[k] == target.c[k] for k in keys])
    values = [c for c in columns if c not in keys]
    if values:
        conn.execute(
            target.update()
            .where(sa.exists().where(match))
            .values({c: sa.select(staged.c[c]).where(match).scalar_subquery() for c in values})
        )
    inner = target.alias("existing")
    missing = ~sa.exists().where(sa.and_(*[inner.c[k] == staged.c[k] for k in keys]))
    conn.execute(
        target.insert().from_select(
            list(columns), sa.select(*[staged.c[c] for c in columns]).where(missing)
        )
    )


def _utc_timestamps(data: pa.Table) -> pa.Table:
    """Zone-aware timestamps in UTC: drivers without zones store the UTC wall time."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit, "UTC"))
        if pa.types.is_timestamp(f.type) and f.type.tz
        else f
        for f in data.schema
    ]
    return data.cast(pa.schema(fields))
