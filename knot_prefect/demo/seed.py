"""Build the demo's embedded world: warehouse tables, Feast repo, block documents."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.warehouses.base import Warehouse

# A few customers with a plan the scoring contract does not know: scoring quarantines
# them instead of scoring garbage, which the demo's summary shows.
BAD_PLAN_CUSTOMERS = 3
FEAST_PROJECT = "churn_demo"


def with_bad_rows(customers: pd.DataFrame) -> pd.DataFrame:
    """Give the last customers an unknown plan, as upstream systems sometimes do."""
    frame = customers.copy()
    frame.loc[frame.index[-BAD_PLAN_CUSTOMERS:], "plan"] = "legacy-unknown"
    return frame


def seed_warehouse(warehouse: Warehouse, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Write the demo tables, replacing earlier content (so reruns are idempotent).

    Returns:
        Rows written per table.
    """
    written = {}
    for name, frame in tables.items():
        result = warehouse.write(frame, name, mode="replace")
        written[name] = result.rows
    return written


def write_feature_repo(repo: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the churn Feast repo: definitions, feature_store.yaml and Parquet sources.

    Returns:
        The repo folder.
    """
    from knot_prefect.features.local_repo import write_local_feature_store_yaml

    repo.mkdir(parents=True, exist_ok=True)
    source = resources.files("knot_prefect.demo") / "feature_repo" / "churn_features.py"
    target = repo / "churn_features.py"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        target.write_bytes(source.read_bytes())
    write_local_feature_store_yaml(repo, FEAST_PROJECT)
    data = repo / "data"
    data.mkdir(exist_ok=True)
    activity = tables["customer_activity"][
        ["customer_id", "event_timestamp", "sessions_7d", "minutes_7d", "tickets_14d",
         "failed_payments_14d"]
    ]
    profile = tables["customers"][["customer_id", "signup_at", "monthly_fee"]]
    _write_parquet_atomically(activity, data / "customer_activity.parquet")
    _write_parquet_atomically(profile, data / "customer_profile.parquet")
    return repo


def _write_parquet_atomically(frame: pd.DataFrame, path: Path) -> None:
    temporary = path.with_suffix(".parquet.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)


def reset_home(home: Path) -> None:
    """Remove a knot home folder (``knot demo --fresh``)."""
    shutil.rmtree(home, ignore_errors=True)
