"""DuckDB over Delta tables: every table a query names, at one version.

Each table is registered at one version (its latest, or the one a read pins), so a
query sees exactly one committed state of each table, whatever commits meanwhile.
A local table whose data files hold its rows as they are (no partition values kept
in the log, no deletion vectors, no column mapping) is read by DuckDB's own Parquet
reader over the files that version lists; any other as delta-rs's Arrow dataset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from knot_prefect.blocks.warehouses.delta.tables import arrow_schema, open_table
from knot_prefect.blocks.warehouses.lake.query import (
    query_tables,
    register_dataset,
    register_files,
)

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName

# Reader features that change how the log is read or what a type means, never which
# rows and columns the data files hold.
FILE_TRANSPARENT_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})


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
        files = plain_files(delta_table) if location.storage.is_local else None
        if files:
            register_files(connection, table, files, arrow_schema(delta_table), cast=True)
        else:
            register_dataset(connection, table, delta_table.to_pyarrow_dataset())

    with query_tables(location.storage, sql, params, register) as relation:
        yield relation


def plain_files(delta_table: DeltaTable) -> list[str] | None:
    """The data files of the table's version, when they hold its rows exactly as stored.

    None when reading the files alone would miss something the log keeps: partition
    values (in the log, not the files), deletion vectors (rows deleted without
    rewriting a file), column mapping (physical column names), or a reader feature
    not known here.
    """
    protocol = delta_table.protocol()
    metadata = delta_table.metadata()
    features = set(protocol.reader_features or ())
    if (protocol.min_reader_version > 3 or features - FILE_TRANSPARENT_FEATURES
            or metadata.partition_columns
            or metadata.configuration.get("delta.columnMapping.mode", "none") != "none"):
        return None
    # The log keeps paths URI-encoded (a space as %20); DuckDB opens plain paths.
    return [unquote(uri) for uri in delta_table.file_uris()]
