"""Delta tables as delta-rs opens them, and delta-rs errors as knot's.

A conflict between two writers' commits (delta-rs retries blind appends itself;
what it cannot reconcile it refuses) becomes knot's retryable
:class:`~knot_prefect.blocks.warehouses.base.ConcurrentWriteError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    SchemaMismatchError,
    TableNotFoundError,
    WarehouseError,
    table_not_found_error,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from knot_prefect.blocks.warehouses.delta.location import DeltaLocation
    from knot_prefect.blocks.warehouses.identifiers import TableName


def open_table(location: DeltaLocation, table: TableName,
               version: int | None = None) -> DeltaTable | None:
    """The table at its latest (or the given) version; None when it does not exist."""
    from deltalake import DeltaTable

    uri = location.uri(table)
    with delta_errors(location, str(table)):
        if not DeltaTable.is_deltatable(uri, storage_options=location.options):
            return None
        return DeltaTable(uri, version=version, storage_options=location.options)


def table_or_raise(location: DeltaLocation, table: TableName,
                   version: int | None = None) -> DeltaTable:
    """The table (see :func:`open_table`).

    Raises:
        TableNotFoundError: When there is no Delta table of that name.
    """
    found = open_table(location, table, version)
    if found is None:
        raise table_not_found_error(table, f"the Delta lake at {location.location}",
                                    table_names(location))
    return found


def table_names(location: DeltaLocation) -> list[str]:
    """The lake's tables (folders holding a ``_delta_log``), as ``[schema.]table``, sorted."""
    storage = location.storage
    root = storage.root.rstrip("/")
    found = []
    for pattern in ("*/_delta_log", "*/*/_delta_log"):
        for log in storage.fs.glob(f"{root}/{pattern}"):
            found.append(".".join(str(log)[len(root) + 1:].split("/")[:-1]))
    return sorted(found)


def arrow_schema(delta_table: DeltaTable) -> pa.Schema:
    """The table's columns as an Arrow schema."""
    import pyarrow as pa

    return pa.schema(delta_table.schema().to_arrow())


@contextlib.contextmanager
def delta_errors(location: DeltaLocation, table: str) -> Iterator[None]:
    """Raise delta-rs errors met in the block as knot's warehouse errors."""
    from deltalake.exceptions import CommitFailedError, DeltaError
    from deltalake.exceptions import SchemaMismatchError as DeltaSchemaMismatch
    from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

    try:
        yield
    except CommitFailedError as exc:
        raise ConcurrentWriteError(
            f"Another writer committed to {table} in the Delta lake at {location.location} "
            f"first ({exc}); nothing of this write was committed, and retrying the write is safe."
        ) from exc
    except DeltaSchemaMismatch as exc:
        raise SchemaMismatchError(f"Cannot write to {table}: {exc}") from exc
    except DeltaTableNotFound as exc:
        raise TableNotFoundError(
            f"Table {table} does not exist in the Delta lake at {location.location}: {exc}"
        ) from exc
    except DeltaError as exc:
        if "already exists" in str(exc):
            raise ConcurrentWriteError(
                f"Another writer created {table} in the Delta lake at {location.location} "
                "first; nothing of this write was committed, and retrying the write is safe."
            ) from exc
        raise WarehouseError(f"Delta lake at {location.location}, table {table}: {exc}") from exc
    except OSError as exc:
        raise WarehouseError(
            f"Cannot reach the Delta lake at {location.location} ({table}): {exc}"
        ) from exc
