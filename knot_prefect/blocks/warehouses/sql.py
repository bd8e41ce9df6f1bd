"""``SqlWarehouse``: any database SQLAlchemy reaches, with a bulk path for PostgreSQL.

PostgreSQL goes through ADBC (binary COPY in, Arrow out) when
``adbc-driver-postgresql`` is installed (``pip install knot-prefect[postgres]``);
every other dialect, and PostgreSQL without ADBC, goes through SQLAlchemy Core.
Both paths give the same guarantees: one transaction per write, quoted
identifiers, bound values.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from knot_prefect.blocks.warehouses._common import redact
from knot_prefect.blocks.warehouses.base import Evolve
from knot_prefect.blocks.warehouses.identifiers import IdentifierLimit, TableName
from knot_prefect.blocks.warehouses.sql_session import SqlSession
from knot_prefect.blocks.warehouses.staging import SqlStagedWarehouse
from knot_prefect.urls import NO_CREDENTIALS_PATTERN, check_no_credentials, mask_url, mask_urls

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import URL


class SqlPath(Protocol):
    """One way of reaching the database: ADBC (``_postgres.PostgresAdbc``) or SQLAlchemy
    Core (``_sqlalchemy.SqlAlchemyOps``). ``SqlWarehouse`` has checked names, mode, keys
    and the frame before it calls ``write``.
    """

    def read_arrow(self, sql: str, params: Mapping[str, Any] | None) -> pa.Table: ...

    def read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]: ...

    def read_table_arrow(self, table: TableName, columns: Sequence[str] | None) -> pa.Table: ...

    def write(
        self, data: pa.Table, name: TableName, mode: str, keys: list[str], evolve: Evolve
    ) -> int: ...

    def table_exists(self, table: TableName) -> bool: ...

    def execute(self, sql: str, params: Mapping[str, Any] | None) -> None: ...

    def server_version(self) -> str: ...

    def session(self) -> contextlib.AbstractContextManager[SqlSession]: ...


# Names longer than these are cut short by the server: knot refuses them instead.
_IDENTIFIER_LIMITS = {
    "postgresql": IdentifierLimit(63, "PostgreSQL"),
    "mysql": IdentifierLimit(64, "MySQL"),
}


class SqlWarehouse(SqlStagedWarehouse):
    """A database reached through a SQLAlchemy URL, used as a warehouse.

    The password lives in its own secret field, never in the URL. PostgreSQL
    reads and writes take the ADBC bulk path (binary COPY) when
    ``adbc-driver-postgresql`` is installed.

    Examples:
        >>> import pandas as pd
        >>> from knot_prefect import SqlWarehouse
        >>> warehouse = SqlWarehouse(url="sqlite://")
        >>> warehouse.write(pd.DataFrame({"id": [1, 2]}), "ids").rows
        2
        >>> warehouse.table_exists("ids")
        True
    """

    _block_type_name = "SQL Warehouse"
    _description = (
        "A database reached through a SQLAlchemy URL (PostgreSQL, MySQL, SQLite, ...) used "
        "as a warehouse: SQL reads as pandas or Arrow, atomic appends, replaces and upserts, "
        "and a binary COPY fast path for PostgreSQL."
    )
    _code_example = """```python
from knot_prefect import SqlWarehouse

warehouse = SqlWarehouse.load("BLOCK_NAME")
events = warehouse.read("select * from events where day = :day", {"day": "2024-06-01"})
warehouse.write(scores_df, "analytics.scores", mode="upsert", keys=["customer_id"])
```"""

    url: str = Field(
        default=...,
        description=(
            "SQLAlchemy URL without the password, e.g. "
            "'postgresql+psycopg://analyst@db.internal:5432/warehouse' or 'sqlite:///data.db'."
        ),
        json_schema_extra={"pattern": NO_CREDENTIALS_PATTERN},
    )
    password: SecretStr | None = Field(
        default=None, description="Password of the URL's user; leave empty when none is needed."
    )
    fast_path: bool = Field(
        default=True,
        description=(
            "Use ADBC binary COPY for PostgreSQL when adbc-driver-postgresql is installed."
        ),
    )

    # A URL typed with its password must not echo back in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    _path: SqlPath | None = PrivateAttr(default=None)

    @field_validator("url")
    @classmethod
    def _url_without_password(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "url is not a SQLAlchemy URL: use 'dialect+driver://user@host:port/database'."
            ) from None
        return check_no_credentials(value, "url", "password")

    def __getstate__(self) -> dict[Any, Any]:
        """A pickled block (sent to a Dask worker) opens its own connections."""
        state = super().__getstate__()
        return {**state, "__pydantic_private__": {
            **(state.get("__pydantic_private__") or {}), "_path": None}}

    # -- connections -----------------------------------------------------------------
    def _url(self) -> URL:
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is not None:
            url = url.set(drivername="postgresql+psycopg")
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name (``postgresql``, ``sqlite``, ``mysql``, ...)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).get_backend_name()

    def describe(self) -> str:
        """The database as text without secrets (for messages and artifacts)."""
        return mask_url(self._url().render_as_string(hide_password=True))

    def _redact(self, text: str) -> str:
        secret = self.password.get_secret_value() if self.password else None
        return mask_urls(redact(text, [secret]))  # a driver may echo another DSN

    def identifier_limit(self) -> IdentifierLimit | None:
        """PostgreSQL keeps 63 bytes of a name and MySQL 64 characters; others more."""
        return _IDENTIFIER_LIMITS.get(self.dialect)

    def uses_fast_path(self) -> bool:
        """Whether reads and writes go through ADBC (PostgreSQL with the driver installed)."""
        return (
            self.fast_path
            and self.dialect == "postgresql"
            and importlib.util.find_spec("adbc_driver_postgresql") is not None
        )

    def _backend(self) -> SqlPath:
        if self._path is None:
            if self.uses_fast_path():
                from knot_prefect.blocks.warehouses._postgres import PostgresAdbc

                uri = self._url().set(drivername="postgresql")
                self._path = PostgresAdbc(
                    uri.render_as_string(hide_password=False), self.describe(), self._redact
                )
            else:
                from knot_prefect.blocks.warehouses._sqlalchemy import SqlAlchemyOps, make_engine

                self._path = SqlAlchemyOps(
                    make_engine(self._url()), self.describe(), self._redact
                )
        return self._path

    def check_connection(self) -> str:
        """Connect and report the server's version (no secrets in the text)."""
        path = "ADBC" if self.uses_fast_path() else "SQLAlchemy"
        return f"{self._backend().server_version()} via {path} at {self.describe()}"

    # -- reads -----------------------------------------------------------------------
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return the result as a pyarrow Table (ADBC: Arrow from COPY)."""
        return self._backend().read_arrow(sql, params)

    def _read_batches(
        self, sql: str, params: Mapping[str, Any] | None, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result in record batches of at most ``batch_rows`` rows.

        On PostgreSQL the rows stream from the server (binary COPY, or a server-side
        cursor when the query has parameters), so memory stays flat.
        """
        return self._backend().read_batches(sql, params, batch_rows)

    def read_table_arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table (or some of its columns) as a pyarrow Table.

        Raises:
            TableNotFoundError: When the table does not exist; the message lists the
                tables that do.
        """
        self.check_column_names(columns or [])
        return self._backend().read_table_arrow(self.table_name(name), columns)

    # -- writes ----------------------------------------------------------------------
    def _write_arrow(
        self, data: pa.Table, table: str, mode: str, keys: list[str], evolve: Evolve
    ) -> int:
        return self._backend().write(data, self.table_name(table), mode, keys, evolve)

    def _session(self) -> contextlib.AbstractContextManager[SqlSession]:
        return self._backend().session()

    def shared_by_processes(self) -> bool:
        """False for SQLite (a file one process writes at a time), True for servers."""
        return self.dialect != "sqlite"

    # -- other -----------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        """Whether ``name`` (``"table"`` or ``"schema.table"``) exists."""
        return self._backend().table_exists(self.table_name(name))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement that returns no rows (DDL, DML), committed on success."""
        self._backend().execute(sql, params)
