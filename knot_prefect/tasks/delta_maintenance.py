"""Keeping Delta tables fast and small: compaction and vacuum, as plain functions and tasks.

Examples:
    >>> import tempfile, pandas as pd
    >>> from knot_prefect import DeltaLake
    >>> lake = DeltaLake(path=tempfile.mkdtemp())
    >>> for day in range(3):
    ...     _ = lake.write(pd.DataFrame({"day": [day]}), "events")
    >>> optimize_table(lake, "events")["numFilesRemoved"]
    3
    >>> len(vacuum_table(lake, "events", retain_hours=0))
    3
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.blocks.resolve import resolve_block

if TYPE_CHECKING:
    from knot_prefect.blocks.warehouses.delta_lake import DeltaLake


def _lake(lake: DeltaLake | str) -> DeltaLake:
    from knot_prefect.blocks.warehouses.delta_lake import DeltaLake

    return resolve_block(lake, DeltaLake, parameter="lake")


def optimize_table(lake: DeltaLake | str, table: str) -> dict[str, Any]:
    """Compact a Delta table's small files (one new version; the rows do not change).

    Args:
        lake: A DeltaLake block or the name of its document.
        table: ``"table"`` or ``"schema.table"``.

    Returns:
        delta-rs's metrics, e.g. ``numFilesAdded`` and ``numFilesRemoved``.
    """
    return _lake(lake).optimize(table)


def vacuum_table(lake: DeltaLake | str, table: str, retain_hours: float = 168.0) -> list[str]:
    """Delete a Delta table's files that no version younger than ``retain_hours`` uses.

    Args:
        lake: A DeltaLake block or the name of its document.
        table: ``"table"`` or ``"schema.table"``.
        retain_hours: Versions younger than this stay readable (lineage pins them).

    Returns:
        The files deleted, relative to the table.
    """
    return _lake(lake).vacuum(table, retain_hours)


optimize_delta_table = task(name="optimize-delta-table", cache_policy=NO_CACHE)(optimize_table)
vacuum_delta_table = task(name="vacuum-delta-table", cache_policy=NO_CACHE)(vacuum_table)
