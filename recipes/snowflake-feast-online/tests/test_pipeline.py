"""Train on (emulated) Snowflake, score with online features, merge back by key."""

from __future__ import annotations

from pathlib import Path

from generate_data import generate
from pipeline import churn_pipeline

CUSTOMERS = 300
BAD_PLANS = 3  # customers the generator gives an unknown plan


def test_pipeline_scores_with_online_features_and_merges_each_key_once(blocks: Path) -> None:
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    assert generate(customers=CUSTOMERS, seed=5)["customers"] == CUSTOMERS
    first = churn_pipeline(model_name="churn-recipe-sf")
    assert first["training"]["promotion"]["decision"] == "promoted"
    assert first["scoring"]["feature_source"] == "online"

    churn_pipeline(model_name="churn-recipe-sf")
    warehouse = resolve_block("sf-warehouse", Warehouse)  # type: ignore[type-abstract]
    counts = warehouse.read(
        'select "customer_id", count(*) as "n" from "churn_predictions" group by 1'
    )
    assert len(counts) == CUSTOMERS - BAD_PLANS
    assert set(counts["n"]) == {1}
