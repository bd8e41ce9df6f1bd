"""DuckDB over Iceberg tables: every table a query names, as an Arrow dataset.

Each table is registered at one snapshot (its current one, or the one a read pins),
so a query sees exactly one committed state of each table, whatever commits
meanwhile. The data files the snapshot lists are scanned by Arrow, lazily; a
snapshot with delete files (written by another engine) is read through pyiceberg's
own scan, which applies them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from knot_prefect.blocks.warehouses.iceberg.catalog import (
    arrow_schema,
    iceberg_errors,
    open_table,
)
from knot_prefect.blocks.warehouses.lake.query import query_tables, register_dataset

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as pads
    from pyiceberg.table import Table

    from knot_prefect.blocks.warehouses.iceberg.catalog import IcebergLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName


def snapshot_dataset(location: IcebergLocation, iceberg_table: Table,
                     snapshot_id: int | None) -> tuple[pads.Dataset, int | None]:
    """The table's rows at a snapshot (current when None) and that snapshot's id.

    Raises:
        WarehouseError: For a snapshot id the table does not have (expired, or
            another table's).
    """
    import pyarrow.dataset as pads

    from knot_prefect.blocks.warehouses.base import WarehouseError

    if snapshot_id is None:
        snapshot = iceberg_table.current_snapshot()
    else:
        snapshot = iceberg_table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise WarehouseError(
                f"Snapshot {snapshot_id} of the Iceberg table at {iceberg_table.location()} "
                "does not exist (expired, or of another table): read the table's current "
                "snapshot, or one it still lists."
            )
    if snapshot is None:  # created with no rows
        schema = arrow_schema(iceberg_table)
        return pads.dataset(schema.empty_table()), None
    schema = arrow_schema(iceberg_table, snapshot.schema_id)
    scan = iceberg_table.scan(snapshot_id=snapshot.snapshot_id)
    tasks = list(scan.plan_files())
    if any(task.delete_files for task in tasks):
        return pads.dataset(scan.to_arrow().cast(schema)), snapshot.snapshot_id
    paths = [location.path_of(task.file.file_path) for task in tasks]
    storage = location.storage
    return (pads.dataset(paths, schema=schema, format="parquet",
                         filesystem=storage.arrow_filesystem),
            snapshot.snapshot_id)


@contextlib.contextmanager
def query(location: IcebergLocation, sql: str, params: Mapping[str, Any] | None,
          snapshots: Mapping[str, int] | None = None,
          seen: dict[str, int] | None = None) -> Iterator[duckdb.DuckDBPyRelation]:
    """The relation of a query over the lake, open for the ``with`` block.

    Args:
        location: The lake.
        sql: The query, with ``:name`` placeholders.
        params: Values bound to the placeholders.
        snapshots: Snapshot ids to read, by table name (others: their current one).
        seen: Filled with the snapshot id of each table the query read.
    """

    def register(connection: duckdb.DuckDBPyConnection, table: TableName) -> None:
        iceberg_table = open_table(location, table)
        if iceberg_table is None:
            return  # a CTE, or a missing table DuckDB reports by name
        with iceberg_errors(location, str(table)):
            source, snapshot_id = snapshot_dataset(location, iceberg_table,
                                                   (snapshots or {}).get(str(table)))
        if seen is not None and snapshot_id is not None:
            seen[str(table)] = snapshot_id
        register_dataset(connection, table, source)

    with query_tables(location.storage, sql, params, register) as relation:
        yield relation
