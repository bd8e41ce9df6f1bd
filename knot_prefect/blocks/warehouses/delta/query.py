"""DuckDB over Delta tables: every table a query names, as an Arrow dataset.

Each table is registered at one version (its latest, or the one a read pins), so a
query sees exactly one committed state of each table, whatever commits meanwhile.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses._common import bind_named
from knot_prefect.blocks.warehouses.base import TableNotFoundError, WarehouseError
from knot_prefect.blocks.warehouses.delta.tables import open_table
from knot_prefect.blocks.warehouses.lake.query import referenced_tables

if TYPE_CHECKING:
    import duckdb

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName


@contextlib.contextmanager
def query(location: DeltaLocation, sql: str, params: Mapping[str, Any] | None,
          versions: Mapping[str, int] | None = None,
          seen: dict[str, int] | None = None) -> Iterator[duckdb.DuckDBPyRelation]:
    """The relation of a query over the lake, open for the ``with`` block.

    Args:
        location: The lake.
        sql: The query, with ``:name`` placeholders.
        params: Values bound to the placeholders.
        versions: Versions to read, by table name (others are read at their latest).
        seen: Filled with the version of each table the query read.
    """
    import duckdb

    statement, values = bind_named(sql, params, "named_dollar")
    config: dict[str, Any] = {}
    if location.storage.threads:
        config["threads"] = location.storage.threads
    connection = duckdb.connect(config=config)
    try:
        for table in referenced_tables(connection, statement):
            delta_table = open_table(location, table, (versions or {}).get(str(table)))
            if delta_table is None:
                continue  # a CTE, or a missing table DuckDB reports by name
            if seen is not None:
                seen[str(table)] = delta_table.version()
            _register(connection, table, delta_table.to_pyarrow_dataset())
        relation = connection.sql(statement, params=values or None)
        if relation is None:
            raise WarehouseError(
                "read() and read_batches() take a query that returns rows (SELECT ...); "
                "this statement returns none."
            )
        yield relation
    except duckdb.CatalogException as exc:
        raise TableNotFoundError(
            f"Query on the Delta lake at {location.location} failed: {exc}. "
            "Check the table names with list_tables()."
        ) from exc
    except duckdb.Error as exc:
        raise WarehouseError(f"Query on the Delta lake at {location.location} failed: {exc}") \
            from exc
    finally:
        connection.close()


def _register(connection: duckdb.DuckDBPyConnection, table: TableName, source: Any) -> None:
    if table.schema is None:
        connection.register(table.table, source)
        return
    hidden = f"__knot_{uuid.uuid4().hex}"
    connection.register(hidden, source)
    connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
    connection.execute(f'CREATE VIEW {table.quoted()} AS SELECT * FROM "{hidden}"')
