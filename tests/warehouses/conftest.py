"""Warehouse fixtures: one block per backend, each on a real, empty database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from knot_prefect.blocks.warehouses.base import Warehouse

BACKENDS = ["duckdb", "postgres-adbc", "postgres-sqlalchemy", "sqlite"]


def make_warehouse(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Warehouse:
    """A warehouse of ``backend`` on a fresh database."""
    from knot_prefect import DuckDBWarehouse, SqlWarehouse

    if backend == "duckdb":
        return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    if backend == "sqlite":
        return SqlWarehouse(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    database = request.getfixturevalue("postgres_database")
    return SqlWarehouse(url=database["url"], fast_path=backend == "postgres-adbc")


@pytest.fixture(params=BACKENDS)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """The same tests run against every backend of this area."""
    return make_warehouse(request.param, tmp_path, request)


@pytest.fixture
def backend(warehouse: Warehouse) -> str:
    from knot_prefect import DuckDBWarehouse

    if isinstance(warehouse, DuckDBWarehouse):
        return "duckdb"
    if warehouse.dialect == "sqlite":  # type: ignore[attr-defined]
        return "sqlite"
    return "postgres-adbc" if warehouse.uses_fast_path() else "postgres-sqlalchemy"  # type: ignore[attr-defined]


@pytest.fixture
def pg_warehouse(postgres_database: dict[str, str]) -> Warehouse:
    from knot_prefect import SqlWarehouse

    return SqlWarehouse(url=postgres_database["url"])


@pytest.fixture
def make(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Warehouse]:
    return lambda backend: make_warehouse(backend, tmp_path, request)
