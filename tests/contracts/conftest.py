"""Fixtures of the data contract tests: a real DuckDB warehouse, contracts, frames."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ORDERS_YAML = """\
schema_type: dataframe
api: pandas
columns:
  order_id:
    dtype: int64
    unique: true
  amount:
    dtype: float64
    greater_than_or_equal_to: 0
  status:
    dtype: str
    isin:
    - open
    - paid
  email:
    dtype: str
    nullable: false
name: orders
"""


@pytest.fixture
def contract_name() -> str:
    """A fresh contract name per test, so artifacts and events do not mix."""
    return f"orders-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def contract(contract_name: str) -> Any:
    """A saved DataContract whose email column is sensitive."""
    from knot_prefect.blocks.contract import DataContract

    block = DataContract(schema_yaml=ORDERS_YAML, sensitive_columns=["email"])
    block.save(contract_name, overwrite=True)
    return DataContract.load(contract_name)


def make_orders(rows: int, bad_every: int = 0, seed: int = 0) -> pd.DataFrame:
    """Orders; when ``bad_every`` > 0 every such row has a negative amount."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(rows, dtype="int64"),
            "amount": rng.uniform(1, 100, rows),
            "status": rng.choice(["open", "paid"], rows),
            "email": [f"user{i}@example.com" for i in range(rows)],
        }
    )
    if bad_every:
        frame.loc[frame.index[::bad_every], "amount"] = -1.0
    return frame


@pytest.fixture
def warehouse(tmp_path: Path) -> Any:
    """A real DuckDB warehouse in a temporary file."""
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))


def read_artifacts(key: str) -> list[Any]:
    """Artifacts with ``key`` from the Prefect test API, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return sorted(found, key=lambda a: a.created)


def read_events(resource_id: str, expected: int = 1, timeout: float = 30) -> list[Any]:
    """Events about ``resource_id`` from the Prefect test API (waits for delivery)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout
    events: list[Any] = []
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                filter=EventFilter(resource=EventResourceFilter(id=[resource_id])), limit=50
            )
        events = page.events
        if len(events) >= expected:
            break
        time.sleep(0.3)
    return sorted(events, key=lambda e: e.occurred)


@pytest.fixture
def artifacts() -> Callable[[str], list[Any]]:
    return read_artifacts


@pytest.fixture
def events() -> Callable[..., list[Any]]:
    return read_events
