"""Pinned data versions: which version of each lake table a run read.

A Delta table keeps every committed version readable, so a run that records the
version of each table it read can be reproduced exactly, whatever was written
since. :func:`pin_source_versions` resolves those versions once, at the start of a
run, and returns a copy of the warehouse whose every read of those tables sees them
(on Dask workers too: the copy travels pickled with the pins), so the versions
recorded are exactly the data read.

A warehouse without versioned tables (SQL databases, :class:`ParquetLake`) pins
nothing and records nothing: a Parquet lake's manifest generation counts its
switches, but the manifest is replaced in place, so an earlier generation cannot be
read again.

Examples:
    >>> import tempfile, pandas as pd
    >>> from knot_prefect import DeltaLake
    >>> lake = DeltaLake(path=tempfile.mkdtemp())
    >>> _ = lake.write(pd.DataFrame({"id": [1]}), "rows")
    >>> pinned, versions = pin_source_versions(lake, "rows", None)
    >>> _ = lake.write(pd.DataFrame({"id": [2]}), "rows", mode="append")
    >>> versions, pinned.read("SELECT count(*) AS n FROM rows")["n"].tolist()
    ({'rows': 0}, [1])
    >>> versions_text(versions)
    '{"rows": 0}'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from knot_prefect.blocks.warehouses.base import Warehouse

W = TypeVar("W", bound="Warehouse")


@runtime_checkable
class VersionedReads(Protocol):
    """A warehouse whose tables keep readable versions (``DeltaLake``)."""

    def pin_reads(self, sql: str, params: Mapping[str, Any] | None) -> tuple[Any, dict[str, int]]:
        """A copy reading the tables ``sql`` (a query or a table name) names at their
        current versions, and those versions."""
        ...


def pin_source_versions(warehouse: W, source: str,
                        params: Mapping[str, Any] | None) -> tuple[W, dict[str, int]]:
    """Pin the versions of the tables ``source`` reads, for the rest of a run.

    Args:
        warehouse: Where ``source`` is read.
        source: A table name or a query.
        params: Values bound to the query's placeholders.

    Returns:
        The warehouse to read through for the rest of the run (a copy pinned to the
        versions, or ``warehouse`` itself when its tables have no versions), and the
        version of every table ``source`` reads (``{}`` without versions).
    """
    if not isinstance(warehouse, VersionedReads):
        return warehouse, {}
    pinned, versions = warehouse.pin_reads(source, params)
    return pinned, versions


def versions_text(versions: Mapping[str, int]) -> str | None:
    """The versions as the ``source_versions`` lineage value: JSON, or None for none."""
    return json.dumps(dict(sorted(versions.items()))) if versions else None
