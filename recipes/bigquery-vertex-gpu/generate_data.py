"""Sample data: customers, their daily activity and churn labels, ending today.

Writes the three tables to the BigQuery warehouse block (Parquet load jobs). Feast's
BigQuery offline store reads its features from the same tables:

    knot blocks apply blocks.yaml
    python generate_data.py --customers 2000
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

WAREHOUSE = "bq-warehouse"


def generate(
    customers: int = 2_000, days: int = 20, seed: int = 7, warehouse: str = WAREHOUSE
) -> dict[str, int]:
    """Write the sample tables; running it again replaces them (each atomically).

    Returns:
        Rows written per table.
    """
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
    return {name: target.write(frame, name, mode="replace").rows
            for name, frame in tables.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    print(generate(customers=arguments.customers, seed=arguments.seed))
