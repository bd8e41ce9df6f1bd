"""Sample data: customers, their daily activity and churn labels, ending today.

Writes the three tables to the warehouse block and the Feast sources (Parquet) into
the feature store block's repo, so the pipeline has something real to train on:

    knot blocks apply blocks.yaml
    python generate_data.py --customers 2000
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

WAREHOUSE = "churn-warehouse"
FEATURE_STORE = "churn-features"


def generate(
    customers: int = 2_000,
    days: int = 20,
    seed: int = 7,
    warehouse: str = WAREHOUSE,
    feature_store: str = FEATURE_STORE,
) -> dict[str, int]:
    """Write the sample tables and Feast sources; running it again replaces them.

    Returns:
        Rows written per table.
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.demo.data import generate_churn_dataset
    from knot_prefect.demo.seed import with_bad_rows

    # Activity ends today, so features are fresh for scoring now.
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    tables = generate_churn_dataset(customers=customers, days=days, seed=seed, end=end)
    # A few customers on a plan the scoring contract does not know: they are quarantined.
    tables["customers"] = with_bad_rows(tables["customers"])

    target = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    written = {name: target.write(frame, name, mode="replace").rows
               for name, frame in tables.items()}

    repo = Path(str(resolve_block(feature_store, FeastFeatureStore).repo_path))
    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    activity = tables["customer_activity"][
        ["customer_id", "event_timestamp", "sessions_7d", "minutes_7d", "tickets_14d",
         "failed_payments_14d"]
    ]
    activity.to_parquet(data / "customer_activity.parquet", index=False)
    profile = tables["customers"][["customer_id", "signup_at", "monthly_fee"]]
    profile.to_parquet(data / "customer_profile.parquet", index=False)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    print(generate(customers=arguments.customers, seed=arguments.seed))
