"""Build the demo's embedded world: warehouse tables, Feast repo, block documents."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def prepare_demo(customers: int, days: int, seed: int) -> dict[str, Any]:
    """Apply the local block documents, seed the warehouse and write the Feast repo.

    Everything lands in the knot home folder (``KNOT_HOME``); running it again gives
    the same content.

    Returns:
        ``blocks`` (what happened to each document) and ``tables`` (rows per table).
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.demo.data import generate_churn_dataset
    from knot_prefect.documents import apply_file
    from knot_prefect.settings import get_settings

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("knot_prefect.demo") / "local_blocks.yaml") as path:
        applied = apply_file(path)
    tables = generate_churn_dataset(customers=customers, days=days, seed=seed)
    tables["customers"] = with_bad_rows(tables["customers"])
    warehouse = resolve_block("local-warehouse", DuckDBWarehouse)
    written = seed_warehouse(warehouse, tables)
    write_feature_repo(settings.feast_repo_path, tables)
    return {
        "home": str(settings.home.resolve()),
        "blocks": {f"{a.block_type}/{a.name}": a.action for a in applied},
        "tables": written,
    }
