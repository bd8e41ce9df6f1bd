"""``SnowflakeWarehouse``: Snowflake through prefect-snowflake's credentials.

Writes load the frame into a temporary staging table with the connector's bulk
``write_pandas`` (Parquet files PUT to the table stage, then ``COPY INTO``), then
change the target in one atomic statement:

- ``replace`` (and a new table): ``CREATE OR REPLACE TABLE target AS SELECT * FROM stage``;
- ``append``: ``INSERT INTO target (...) SELECT ... FROM stage``;
- ``upsert``: ``MERGE INTO target USING stage ON keys ...``.

A writer that fails or is killed before that statement leaves the target untouched;
the temporary staging table disappears with its session.

Identifiers are always quoted, so names are case-sensitive exactly as written: a table
created unquoted in Snowflake (``create table scores``) is ``SCORES``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prefect_snowflake import SnowflakeCredentials
from pydantic import Field

from knot_prefect.blocks.fields import loaded_block_example
from knot_prefect.blocks.warehouses._common import bind_named, column_kind, redact, staging_name
from knot_prefect.blocks.warehouses.base import (
    Evolve,
    TableNotFoundError,
    WarehouseConnectionError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier
from knot_prefect.blocks.warehouses.sql_session import SqlSession
from knot_prefect.blocks.warehouses.staging import SqlStagedWarehouse

if TYPE_CHECKING:
    import pyarrow as pa
    from snowflake.connector import SnowflakeConnection
    from snowflake.connector.cursor import SnowflakeCursor


# How a saved block is used (the Prefect UI shows it on the block's page).
CODE_EXAMPLE = loaded_block_example("SnowflakeWarehouse", "warehouse", """
frame = warehouse.read("SELECT * FROM FEATURES WHERE DAY = :day", {"day": "2024-01-01"})
warehouse.write(frame, "PREDICTIONS", mode="replace")
""")


class SnowflakeWarehouse(SqlStagedWarehouse):
    """Read and write Snowflake tables with bulk loads and atomic swaps.

    Examples:
        ```python
        from prefect_snowflake import SnowflakeCredentials
        from knot_prefect import SnowflakeWarehouse

        warehouse = SnowflakeWarehouse(
            credentials=SnowflakeCredentials.load("snowflake"),
            database="ANALYTICS", warehouse="COMPUTE_WH", schema_name="ML",
        )
        warehouse.write(frame, "PREDICTIONS", mode="upsert", keys=["CUSTOMER_ID"])
        ```
    """

    _block_type_name = "Snowflake Warehouse"
    _description = (
        "Snowflake tables read as Arrow and written in bulk (write_pandas into a "
        "staging table, then one atomic statement), with prefect-snowflake credentials."
    )
    _code_example = CODE_EXAMPLE

    credentials: SnowflakeCredentials = Field(
        description="The prefect-snowflake credentials used to connect."
    )
    database: str = Field(description="The database holding the tables.")
    warehouse: str = Field(description="The Snowflake virtual warehouse that runs queries.")
    schema_name: str = Field(
        default="PUBLIC", description="The schema of table names given without one."
    )

    # -- connection ----------------------------------------------------------------
    def _secrets(self) -> list[str | None]:
        values: list[str | None] = []
        for name in ("password", "token", "private_key_passphrase"):
            secret = getattr(self.credentials, name, None)
            if secret is not None:
                values.append(str(secret.get_secret_value()))
        return values

    @contextmanager
    def _connect(self) -> Iterator[SnowflakeConnection]:
        try:
            connection = self.credentials.get_client(
                database=self.database,
                schema=self.schema_name,
                warehouse=self.warehouse,
                paramstyle="qmark",
                autocommit=True,
            )
        except Exception as exc:
            raise WarehouseConnectionError(
                f"Cannot connect to Snowflake account {self.credentials.account!r} as user "
                f"{self.credentials.user!r} (database {self.database!r}): "
                f"{redact(str(exc), self._secrets())}. Check the credentials block."
            ) from None
        try:
            yield connection
        finally:
            connection.close()

    def _full(self, table: TableName) -> str:
        return f"{quote_identifier(self.database, 'database')}.{table.quoted()}"

    def _run(self, cursor: SnowflakeCursor, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return cursor.execute(sql, list(params))
        except Exception as exc:
            if type(exc).__module__.startswith("snowflake"):
                message = redact(str(exc), self._secrets())
                if "does not exist" in message:
                    raise TableNotFoundError(f"Snowflake: {message}") from None
                raise WarehouseError(f"Snowflake: {message}") from None
            raise

    # -- reads ---------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return the result as a pyarrow Table.

        Uses the connector's ``fetch_arrow_all``; a connection without it (such as an
        in-process emulator) is read row by row into the same Arrow types.
        """
        import pyarrow as pa

        statement, values = bind_named(sql, params, "qmark")
        with self._connect() as connection:
            cursor = self._run(connection.cursor(), statement, values)
            fetch = getattr(cursor, "fetch_arrow_all", None)
            if fetch is not None:
                table = fetch(force_return_table=True)
                return table if table is not None else pa.table({})
            return _rows_to_arrow(cursor.description, cursor.fetchall())

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        statement, values = bind_named(sql, params, "qmark")
        with self._connect() as connection:
            cursor = self._run(connection.cursor(), statement, values)
            fetch_batches = getattr(cursor, "fetch_arrow_batches", None)
            if fetch_batches is not None:
                for table in fetch_batches():
                    yield from table.to_batches(max_chunksize=batch_rows)
                return
            while rows := cursor.fetchmany(batch_rows):
                yield from _rows_to_arrow(cursor.description, rows).to_batches()

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table, or some of its columns, as a pyarrow Table."""
        table = self._target(name)
        if not self.table_exists(name):
            raise TableNotFoundError(
                f"Table {name!r} does not exist in Snowflake database {self.database!r}: "
                "check the name (names are case-sensitive) or write it first."
            )
        selected = (
            ", ".join(quote_identifier(c, "column") for c in columns) if columns else "*"
        )
        return self.read_arrow(f"SELECT {selected} FROM {self._full(table)}")

    # -- writes --------------------------------------------------------------------
    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        return self._write_through_stage(data, table, mode, keys, evolve)

    @contextmanager
    def _stage_frame(
        self, session: SqlSession, target: TableName, data: pa.Table
    ) -> Iterator[TableName]:
        import pandas as pd
        from snowflake.connector import pandas_tools

        assert isinstance(session, _SnowflakeSession)
        # Temporary tables live in the session's schema: name the stage unqualified.
        stage = TableName(staging_name(target).table)
        columns_ddl = ", ".join(
            f"{session.q(f.name)} {snowflake_type(f.type)}" for f in data.schema
        )
        session.run(f"CREATE TEMPORARY TABLE {stage.quoted()} ({columns_ddl})")
        try:
            frame = data.to_pandas(types_mapper=pd.ArrowDtype)
            pandas_tools.write_pandas(
                session.connection, frame, stage.table, quote_identifiers=True,
                use_logical_type=True,
            )
            yield stage
        finally:
            session.drop(stage)

    def _columns(self, cursor: SnowflakeCursor, table: TableName) -> dict[str, str]:
        """The table's columns (name -> Snowflake type), empty when it does not exist."""
        self._run(
            cursor,
            f"SELECT column_name, data_type, numeric_scale "
            f"FROM {quote_identifier(self.database, 'database')}.information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [table.schema, table.table],
        )
        return {
            name: ("NUMBER_INT" if kind in ("NUMBER", "FIXED") and not scale else kind)
            for name, kind, scale in cursor.fetchall()
        }

    # -- staged writes: hooks of the shared algorithm (see staging.py) ----------------
    @contextmanager
    def _session(self) -> Iterator[SqlSession]:
        with self._connect() as connection:
            yield _SnowflakeSession(self, connection)

    def _default_schema(self) -> str:
        return self.schema_name

    def describe(self) -> str:
        """The database as text (for messages)."""
        return f"Snowflake database {self.database}"

    # -- other ---------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"TABLE"`` or ``"SCHEMA.TABLE"``) exists."""
        table = self._target(name)
        with self._connect() as connection:
            cursor = self._run(
                connection.cursor(),
                f"SELECT count(*) FROM {quote_identifier(self.database, 'database')}"
                ".information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [table.schema, table.table],
            )
            return bool(cursor.fetchall()[0][0])

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns no rows, with ``:name`` values bound."""
        statement, values = bind_named(sql, params, "qmark")
        with self._connect() as connection:
            self._run(connection.cursor(), statement, values)

    def check_connection(self) -> str:
        """Connect and ask Snowflake for its version.

        Returns:
            The Snowflake version, account and database.
        """
        with self._connect() as connection:
            cursor = self._run(connection.cursor(), "SELECT CURRENT_VERSION()")
            version = cursor.fetchall()[0][0]
        return (
            f"Snowflake {version}, account {self.credentials.account}, "
            f"database {self.database}"
        )


class _SnowflakeSession(SqlSession):
    """Snowflake's hooks: DDL commits at once, so the target changes in one statement
    (``CREATE OR REPLACE TABLE ... AS``, ``INSERT`` or ``MERGE``) and the stages are
    dropped after it."""

    qualify_set = True
    transactional_ddl = False

    def __init__(self, warehouse: SnowflakeWarehouse, connection: SnowflakeConnection) -> None:
        self.warehouse, self.connection = warehouse, connection
        self.cursor: SnowflakeCursor = connection.cursor()

    def run(self, sql: str) -> None:
        self.warehouse._run(self.cursor, sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.warehouse._run(self.cursor, sql).fetchall())

    def full(self, table: TableName) -> str:
        # Temporary tables live in the session's schema and are named unqualified.
        return self.warehouse._full(table) if table.schema else table.quoted()

    def families(self, table: TableName) -> dict[str, str]:
        return {n: _family(t) for n, t in self.warehouse._columns(self.cursor, table).items()}

    def column_type(self, data_type: pa.DataType) -> str:
        return snowflake_type(data_type)

    def table_names(self, schema: str | None) -> list[str]:
        database = quote_identifier(self.warehouse.database, "database")
        found = self.warehouse._run(
            self.cursor,
            f"SELECT table_name FROM {database}.information_schema.tables "
            "WHERE table_schema = ?",
            [schema or self.warehouse.schema_name],
        ).fetchall()
        return [row[0] for row in found]

    def create_schema(self, table: TableName) -> None:
        database = quote_identifier(self.warehouse.database, "database")
        schema = quote_identifier(table.schema or self.warehouse.schema_name, "schema")
        self.run(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")


# -- type mapping ----------------------------------------------------------------------
_SNOWFLAKE_TYPES = {
    "boolean": "BOOLEAN", **dict.fromkeys(["int16", "int32", "int64", "uint64"], "NUMBER(38,0)"),
    "float32": "FLOAT", "float64": "FLOAT", "string": "VARCHAR", "binary": "BINARY",
    "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP_NTZ", "timestamptz": "TIMESTAMP_TZ",
}


def snowflake_type(arrow_type: pa.DataType) -> str:
    """The Snowflake column type that holds an Arrow type without loss.

    Examples:
        >>> import pyarrow as pa
        >>> snowflake_type(pa.decimal128(10, 2)), snowflake_type(pa.timestamp("us", "UTC"))
        ('NUMBER(10,2)', 'TIMESTAMP_TZ')
    """
    kind = column_kind(arrow_type)
    if kind == "decimal":
        return f"NUMBER({arrow_type.precision},{arrow_type.scale})"  # type: ignore[attr-defined]
    if kind not in _SNOWFLAKE_TYPES:
        raise WarehouseError(
            f"Arrow type {arrow_type} has no Snowflake column type in knot: convert the "
            "column to a string, number, boolean, date or timestamp first."
        )
    return _SNOWFLAKE_TYPES[kind]


def _family(snowflake_data_type: str) -> str:
    kind = snowflake_data_type.upper()
    families = {
        "NUMBER_INT": "integer", "NUMBER": "decimal", "FIXED": "decimal", "FLOAT": "float",
        "REAL": "float", "TEXT": "string", "VARCHAR": "string", "BOOLEAN": "boolean",
        "DATE": "date", "TIME": "time", "BINARY": "binary",
    }
    if kind.startswith("TIMESTAMP"):
        return "timestamp"
    return families.get(kind, "other")


def _rows_to_arrow(description: Any, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Build an Arrow table from DB-API rows, typed from the cursor description."""
    import pyarrow as pa
    from snowflake.connector.constants import FIELD_ID_TO_NAME

    arrays, names = [], []
    for index, column in enumerate(description or []):
        kind = FIELD_ID_TO_NAME[column.type_code]
        scale, precision = column.scale or 0, column.precision or 38
        arrow_type: pa.DataType | None = {
            "REAL": pa.float64(), "TEXT": pa.string(), "BOOLEAN": pa.bool_(),
            "DATE": pa.date32(), "TIME": pa.time64("us"), "BINARY": pa.binary(),
            "TIMESTAMP_NTZ": pa.timestamp("us"), "TIMESTAMP_TZ": pa.timestamp("us", "UTC"),
            "TIMESTAMP_LTZ": pa.timestamp("us", "UTC"),
        }.get(kind)
        if kind == "FIXED":
            arrow_type = pa.int64() if scale == 0 else pa.decimal128(precision, scale)
        names.append(column.name)
        arrays.append(pa.array([row[index] for row in rows], type=arrow_type))
    return pa.Table.from_arrays(arrays, names=names)
