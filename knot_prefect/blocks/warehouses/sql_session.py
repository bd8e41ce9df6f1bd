"""``SqlSession``: one transaction on a SQL warehouse, as the staged-write algorithm sees it.

The algorithm (:mod:`knot_prefect.blocks.warehouses.staging`) is written once against
this interface; each SQL backend (DuckDB, PostgreSQL via ADBC or SQLAlchemy, SQLite,
Snowflake, BigQuery) subclasses it with its dialect's statements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import merge_sql
from knot_prefect.blocks.warehouses.identifiers import TableName, quote_identifier

if TYPE_CHECKING:
    import pyarrow as pa


class SqlSession(ABC):
    """One transaction on a SQL warehouse, as the staged-write algorithm sees it.

    Backends implement the abstract methods and override the defaults their dialect
    spells differently.

    Attributes:
        quote: The dialect's identifier quote.
        qualify_set: ``MERGE`` updates name the target (``SET t.col``).
        transactional_ddl: ``DROP TABLE`` joins the transaction (else the stages are
            dropped after the publishing statement, and a failure to drop is logged).
        case_insensitive: Column names match regardless of case (DuckDB).
    """

    quote = '"'
    qualify_set = False
    transactional_ddl = True
    case_insensitive = False

    @abstractmethod
    def run(self, sql: str) -> None:
        """Run one statement."""

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""

    @abstractmethod
    def families(self, table: TableName) -> dict[str, str]:
        """The table's columns, name -> type family; empty when the table is missing."""

    @abstractmethod
    def column_type(self, data_type: pa.DataType) -> str:
        """The dialect's column type for an Arrow type."""

    @abstractmethod
    def table_names(self, schema: str | None) -> list[str]:
        """The tables of a schema (the default one for None)."""

    # -- hooks with a default ------------------------------------------------------
    def full(self, table: TableName) -> str:
        """The table's name as SQL refers to it."""
        return table.quoted(self.quote)

    def q(self, column: str) -> str:
        """A quoted column name."""
        return quote_identifier(column, "column name", self.quote)

    def lock_new_table(self, table: TableName) -> bool:
        """Called when the table is missing: make a second first writer wait for the first.

        Returns:
            Whether a lock was taken (PostgreSQL), after which the table is looked up
            again; False by default.
        """
        return False

    def create_schema(self, table: TableName) -> None:
        """Create the table's schema when missing."""
        if table.schema:
            self.run(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(table.schema)}")

    def create(
        self, target: TableName, schema: pa.Schema, source: str, replace: bool,
        keys: Sequence[str],
    ) -> None:
        """Create (or, with ``replace``, recreate) the target from the source's rows.

        Where DDL commits at once (``transactional_ddl`` false), one
        ``CREATE OR REPLACE TABLE ... AS SELECT`` does it: no reader sees the table
        empty or missing.
        """
        if not self.transactional_ddl:
            self.run(f"CREATE OR REPLACE TABLE {self.full(target)} AS SELECT * FROM {source} AS s")
            return
        if replace:
            self.run(f"DROP TABLE {self.full(target)}")
        ddl = ", ".join(f"{self.q(f.name)} {self.column_type(f.type)}" for f in schema)
        self.run(f"CREATE TABLE {self.full(target)} ({ddl})")
        self.after_create(target, keys)
        self.append(target, source, schema.names)

    def after_create(self, target: TableName, keys: Sequence[str]) -> None:
        """Called after the target is created for an upsert (PostgreSQL adds a unique key)."""
        return None

    def add_column(self, target: TableName, column: str, data_type: pa.DataType) -> None:
        """Add a column to the target."""
        self.run(
            f"ALTER TABLE {self.full(target)} ADD COLUMN {self.q(column)} "
            f"{self.column_type(data_type)}"
        )

    def append(self, target: TableName, source: str, columns: Sequence[str]) -> None:
        """Insert the source's rows."""
        listed = ", ".join(self.q(c) for c in columns)
        self.run(f"INSERT INTO {self.full(target)} ({listed}) SELECT {listed} FROM {source} AS s")

    def upsert(
        self, target: TableName, source: str, columns: Sequence[str], keys: Sequence[str]
    ) -> None:
        """Update the target's rows whose keys the source holds, insert the others."""
        self.run(merge_sql(self.full(target), source, columns, keys, self.quote,
                           self.qualify_set))

    def drop(self, table: TableName) -> None:
        """Drop a table if it exists."""
        self.run(f"DROP TABLE IF EXISTS {self.full(table)}")
