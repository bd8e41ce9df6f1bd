"""DuckDB over Iceberg tables: every table a query names, as an Arrow dataset.

Each table is registered at one snapshot (its current one, or the one a read pins),
so a query sees exactly one committed state of each table, whatever commits
meanwhile. The data files the snapshot lists are scanned by Arrow, lazily; a
snapshot with delete files (written by another engine) is read through pyiceberg's
own scan, which applies them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.iceberg.catalog import (
    arrow_schema,
    iceberg_errors,
    open_table,
)
from knot_prefect.blocks.warehouses.lake.query import register_dataset

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


def register_at(location: IcebergLocation, connection: duckdb.DuckDBPyConnection,
                table: TableName, snapshot_id: int | None) -> int | None:
    """Register a table at a snapshot (None: its current one) for a query; return its id.

    The hook of :func:`~knot_prefect.blocks.warehouses.lake.query.versioned_query`:
    None when the catalog has no such table (a CTE, or a missing table DuckDB reports
    by name); a table without a snapshot yet reads empty and returns None too.
    """
    iceberg_table = open_table(location, table)
    if iceberg_table is None:
        return None
    with iceberg_errors(location, str(table)):
        source, read_id = snapshot_dataset(location, iceberg_table, snapshot_id)
    register_dataset(connection, table, source)
    return read_id
