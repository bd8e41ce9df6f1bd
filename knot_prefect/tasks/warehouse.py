"""Prefect tasks that read from and publish to any ``Warehouse`` block.

Both take the warehouse as a block or as the name of a saved block document, so a
flow moves from the embedded DuckDB file to PostgreSQL, Snowflake or BigQuery by
passing another name.

Examples:
    >>> import pandas as pd
    >>> from prefect import flow
    >>> from knot_prefect import DuckDBWarehouse
    >>> from knot_prefect.tasks import extract, publish
    >>> warehouse = DuckDBWarehouse(path=":memory:")
    >>> @flow
    ... def copy_scores() -> int:
    ...     publish(pd.DataFrame({"id": [1, 2], "score": [0.4, 0.8]}), warehouse, "scores")
    ...     return len(extract(warehouse, "select * from scores where score > :s", {"s": 0.5}))
    >>> copy_scores()
    1
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.blocks.resolve import resolve_block
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    Evolve,
    Warehouse,
    WarehouseConnectionError,
    WriteMode,
    WriteResult,
    validate_write_mode,
    warehouse_logger,
)

if TYPE_CHECKING:
    import pandas as pd
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

# "table" or "schema.table" without spaces: anything else is treated as SQL (or, when
# it is a valid name with spaces, as a table if the warehouse has one by that name).
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$\-]*(\.[A-Za-z_][A-Za-z0-9_$\-]*)?$")

#: How many times ``extract`` and ``publish`` retry after a transient connection
#: error (a server restarting, a connection it ended) or a write conflict (another
#: writer had the DuckDB file or switched the lake table), and the seconds between tries.
#: Other errors (bad SQL, a schema mismatch, refused credentials) are never retried.
IO_RETRIES = 2
IO_RETRY_DELAYS: list[float] = [2.0, 10.0]


def retry_on_connection_errors(task: Task[..., Any], task_run: TaskRun, state: State) -> bool:
    """Prefect ``retry_condition_fn``: retry transient connection errors and conflicts only.

    Those are a ``WarehouseConnectionError`` marked transient, Python's own
    ``ConnectionError`` (a socket refused, reset or aborted under a client library),
    and a ``ConcurrentWriteError`` (another writer had the DuckDB file open or
    switched the lake table first; nothing was written, so trying again is safe).

    Examples:
        >>> from prefect.states import Failed
        >>> lost = WarehouseConnectionError("PostgreSQL ended the session.")
        >>> retry_on_connection_errors(None, None, Failed(data=lost))
        True
        >>> busy = ConcurrentWriteError("Another writer changed 'scores'.")
        >>> retry_on_connection_errors(None, None, Failed(data=busy))
        True
        >>> retry_on_connection_errors(None, None, Failed(data=ValueError("bad SQL")))
        False
    """
    error = state.data
    if isinstance(error, ConcurrentWriteError):
        return True
    if isinstance(error, WarehouseConnectionError):
        return error.transient
    return isinstance(error, ConnectionError)


def describe_warehouse(warehouse: Warehouse) -> str:
    """The warehouse as text for logs and artifacts: block type and document name."""
    name = getattr(warehouse, "_block_document_name", None)
    kind = warehouse.get_block_type_name()
    return f"{kind} '{name}'" if name else kind


def is_table_name(text: str) -> bool:
    """Whether ``extract`` reads ``text`` as a table name rather than as SQL.

    Examples:
        >>> is_table_name("analytics.scores"), is_table_name("select * from scores")
        (True, False)
    """
    return bool(_TABLE.match(text.strip()))


def is_spaced_table_name(warehouse: Warehouse, text: str) -> bool:
    """Whether ``text`` names a table of ``warehouse`` whose name holds spaces (``"a b"``).

    Such a name is not :func:`is_table_name` (it could be SQL), so ``extract`` reads it
    as a table only when the warehouse has that table.
    """
    from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError, TableName

    if " " not in text.strip():
        return False
    try:
        return warehouse.table_exists(str(TableName.parse(text.strip())))
    except InvalidIdentifierError:  # not a name: a query
        return False


# Warehouse reads and writes are retry-safe: retried on lost connections, never cached.
WAREHOUSE_IO_OPTIONS: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": IO_RETRIES,
    "retry_delay_seconds": IO_RETRY_DELAYS,
    "retry_condition_fn": retry_on_connection_errors,
}


def extract_frame(
    warehouse: Warehouse | str,
    sql_or_table: str,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Read a table, or the result of a query, from a warehouse.

    Args:
        warehouse: A warehouse block or the name of a saved warehouse document.
        sql_or_table: A table name (``"scores"``, ``"analytics.scores"``) or a SQL
            query with ``:name`` placeholders.
        params: Values bound to the query's placeholders (never formatted in).

    A name with spaces (``"daily scores"``) reads that table when the warehouse has
    it, and runs as SQL otherwise. A transient connection error is retried
    ``IO_RETRIES`` times.

    Returns:
        The rows as a pandas DataFrame.

    Raises:
        ValueError: For an empty or blank ``sql_or_table``, or ``params`` with a table.
    """
    if not sql_or_table.strip():
        raise ValueError(
            "extract needs a table name or a SQL query, and got an empty string: pass a "
            "table name such as 'analytics.scores' or a query such as 'select * from scores'."
        )
    block = resolve_block(warehouse, Warehouse)
    logger = warehouse_logger()
    if is_table_name(sql_or_table) or is_spaced_table_name(block, sql_or_table):
        if params:
            raise ValueError(
                f"params were given but {sql_or_table!r} is a table name, not a query: "
                "write a query with :name placeholders to filter rows."
            )
        frame = block.read_table(sql_or_table.strip())
        source = f"table {sql_or_table.strip()}"
    else:
        frame = block.read(sql_or_table, params)
        source = "query"
    logger.info(
        "Read %d rows x %d columns from the %s of %s.",
        len(frame),
        len(frame.columns),
        source,
        describe_warehouse(block),
    )
    return frame


extract = task(name="extract", **WAREHOUSE_IO_OPTIONS)(extract_frame)


def publish_frame(
    df: Any,
    warehouse: Warehouse | str,
    table: str,
    mode: WriteMode = "append",
    keys: Sequence[str] | None = None,
    evolve: Evolve = False,
) -> WriteResult:
    """Write a frame to a warehouse table atomically and report what was written.

    Use ``mode="upsert"`` with ``keys`` for retry-safe publishing: a retried or
    re-run task updates the same rows instead of adding them twice. A transient
    connection error is retried ``IO_RETRIES`` times (a connection lost while the
    server acknowledged a commit could make a retried ``append`` write twice: upsert
    where that matters).

    Args:
        df: A pandas, polars or pyarrow frame.
        warehouse: A warehouse block or the name of a saved warehouse document.
        table: ``"table"`` or ``"schema.table"``.
        mode: ``append``, ``replace``, ``upsert`` or ``fail``.
        keys: Columns identifying a row (required by ``upsert``).
        evolve: Allow new columns to be added to an existing table.

    Returns:
        Rows written, table, mode and seconds. A table artifact keyed
        ``publish-<table>`` records the same.
    """
    validate_write_mode(mode, keys)
    block = resolve_block(warehouse, Warehouse)
    result = block.write(df, table, mode=mode, keys=keys, evolve=evolve)
    where = describe_warehouse(block)
    logger = warehouse_logger()
    if result.rows == 0:
        logger.info("Published nothing to %s in %s: the frame was empty.", table, where)
    else:
        logger.info(
            "Published %d rows to %s in %s (mode=%s) in %.2fs.",
            result.rows, table, where, mode, result.seconds,
        )
    _record(result, where, keys, _column_names(df))
    return result


publish = task(name="publish", **WAREHOUSE_IO_OPTIONS)(publish_frame)


def _column_names(data: Any) -> list[str]:
    columns = getattr(data, "columns", None)
    if columns is None:
        columns = getattr(data, "column_names", [])
    return [str(c) for c in columns]


def _record(
    result: WriteResult, where: str, keys: Sequence[str] | None, columns: list[str]
) -> None:
    """A table artifact of the write, inside a run only (artifacts need one)."""
    from prefect.artifacts import create_table_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return
    key = "publish-" + re.sub(r"[^a-z0-9]+", "-", result.table.lower()).strip("-")
    create_table_artifact(
        key=key[:100],
        table=[{
            "table": result.table,
            "warehouse": where,
            "mode": result.mode,
            "rows": result.rows,
            "seconds": round(result.seconds, 3),
            "keys": ", ".join(keys or []),
            "columns": ", ".join(columns),
        }],
        description=f"Rows published to {result.table} in {where}.",
    )
