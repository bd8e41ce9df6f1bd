"""Iceberg lakes for the shared contract and these tests: catalogs on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

#: The Iceberg paths the shared warehouse contract runs on.
ICEBERG_BACKENDS = ["iceberg-local", "iceberg-pg"]


def make_iceberg_lake(backend: str, tmp_path: Path, request: pytest.FixtureRequest | None) -> Any:
    """A fresh, empty Iceberg lake: ``iceberg-local`` (SQLite catalog in the folder) or
    ``iceberg-pg`` (the catalog in a fresh PostgreSQL database)."""
    from knot_prefect import IcebergTable

    folder = str(tmp_path / f"iceberg-{uuid.uuid4().hex[:10]}")
    if backend == "iceberg-pg":
        assert request is not None
        database = request.getfixturevalue("postgres_database")
        return IcebergTable(path=folder, catalog_uri=database["url"])
    assert backend == "iceberg-local", backend
    return IcebergTable(path=folder)
