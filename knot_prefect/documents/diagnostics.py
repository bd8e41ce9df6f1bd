"""Connection checks behind ``knot doctor``, which change nothing they look at.

A block's own ``check_connection()`` opens its system the way a flow would, and a flow
creates what is missing (a DuckDB file, the embedded MLflow store). A diagnosis must
not: a block whose local file or folder is missing fails and names the path, and a
DuckDB file is opened read-only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knot_prefect.blocks.base import KnotBlock


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of one block's connection check."""

    reference: str
    ok: bool
    detail: str
    seconds: float


class MissingLocalPathError(FileNotFoundError):
    """A block points at a local file or folder that does not exist."""


def local_paths(block: KnotBlock) -> list[tuple[Path, str]]:
    """The local files and folders a block reads, with what each one is.

    Examples:
        >>> from knot_prefect import SqlWarehouse
        >>> local_paths(SqlWarehouse(url="sqlite:////data/sales.db"))
        [(PosixPath('/data/sales.db'), 'SQLite database')]
        >>> local_paths(SqlWarehouse(url="sqlite://"))
        []
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.duckdb import MEMORY, DuckDBWarehouse
    from knot_prefect.blocks.warehouses.sql import SqlWarehouse

    if isinstance(block, DuckDBWarehouse):
        path = block.database_path
        return [] if path == MEMORY else [(Path(path), "DuckDB database")]
    if isinstance(block, SqlWarehouse):
        return _sqlite_file(block.url)
    if isinstance(block, MLflowTracking):
        return _sqlite_file(block.resolved_tracking_uri(), "MLflow store")
    if isinstance(block, FeastFeatureStore) and block.repo_path is not None:
        return [(Path(block.repo_path).expanduser(), "Feast repo folder")]
    return []


def _sqlite_file(url: str, what: str = "SQLite database") -> list[tuple[Path, str]]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return []
    return [(Path(database), what)]


def check_block(block: KnotBlock) -> str:
    """Check one block without creating or changing anything.

    Returns:
        The block's connection detail.

    Raises:
        MissingLocalPathError: A local file or folder the block reads does not exist.
        Exception: Whatever the block's own check raised.
    """
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    for path, what in local_paths(block):
        if not path.exists():
            raise MissingLocalPathError(
                f"{what} {path} does not exist. knot doctor creates nothing: fix the "
                "block's path, or run a flow that writes it first."
            )
    if isinstance(block, DuckDBWarehouse) and local_paths(block):
        return _check_duckdb_read_only(block.database_path)
    return block.check_connection()


def _check_duckdb_read_only(path: str) -> str:
    import duckdb

    with duckdb.connect(path, read_only=True) as con:
        rows = con.sql("select version()").fetchall()
    version = rows[0][0] if rows else "unknown"
    return f"DuckDB {version} at {path} (opened read-only)"


def check_all_documents() -> list[ConnectionCheck]:
    """Load every knot block document and check it with :func:`check_block`.

    A failure is reported with the exception's type and message; block messages never
    contain secrets, and URLs in them are masked, so they are safe to print.
    """
    from knot_prefect.documents.inventory import knot_documents, load_document
    from knot_prefect.urls import mask_urls

    results: list[ConnectionCheck] = []
    for slug, name in knot_documents():
        reference = f"{slug}/{name}"
        started = time.perf_counter()
        try:
            block, _ = load_document(reference)
            detail = check_block(block)
            ok = True
        except Exception as exc:  # Every failure is a row in the report.
            detail, ok = f"{type(exc).__name__}: {mask_urls(str(exc))}", False
        results.append(ConnectionCheck(reference, ok, detail, time.perf_counter() - started))
    return results
