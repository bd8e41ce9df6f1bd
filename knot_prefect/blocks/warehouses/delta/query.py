"""DuckDB over Delta tables: every table a query names, as an Arrow dataset.

Each table is registered at one version (its latest, or the one a read pins), so a
query sees exactly one committed state of each table, whatever commits meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses.delta.tables import open_table
from knot_prefect.blocks.warehouses.lake.query import query_tables, register_dataset

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

    def register(connection: duckdb.DuckDBPyConnection, table: TableName) -> None:
        delta_table = open_table(location, table, (versions or {}).get(str(table)))
        if delta_table is None:
            return  # a CTE, or a missing table DuckDB reports by name
        if seen is not None:
            seen[str(table)] = delta_table.version()
        register_dataset(connection, table, delta_table.to_pyarrow_dataset())

    with query_tables(location.storage, sql, params, register) as relation:
        yield relation
