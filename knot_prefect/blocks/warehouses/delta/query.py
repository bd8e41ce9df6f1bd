"""DuckDB over Delta tables: every table a query names, at one version.

Each table is registered at one version (its latest, or the one a read pins), so a
query sees exactly one committed state of each table, whatever commits meanwhile.
A local table whose data files hold its rows as they are (no partition values kept
in the log, no deletion vectors, no column mapping) is read by DuckDB's own Parquet
reader over the files that version lists; any other as delta-rs's Arrow dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from knot_prefect.blocks.warehouses.delta.tables import arrow_schema, open_table
from knot_prefect.blocks.warehouses.lake.query import register_dataset, register_files

if TYPE_CHECKING:
    import duckdb
    from deltalake import DeltaTable

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName

# Reader features that change how the log is read or what a type means, never which
# rows and columns the data files hold.
FILE_TRANSPARENT_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})


def register_at(location: DeltaLocation, connection: duckdb.DuckDBPyConnection,
                table: TableName, version: int | None) -> int | None:
    """Register a table at ``version`` (None: its latest) for a query; return the version.

    The hook of :func:`~knot_prefect.blocks.warehouses.lake.query.versioned_query`:
    None when there is no such Delta table (a CTE, or a missing table DuckDB reports
    by name).
    """
    delta_table = open_table(location, table, version)
    if delta_table is None:
        return None
    files = plain_files(delta_table) if location.storage.is_local else None
    if files:
        register_files(connection, table, files, arrow_schema(delta_table), cast=True)
    else:
        register_dataset(connection, table, delta_table.to_pyarrow_dataset())
    return int(delta_table.version())


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
