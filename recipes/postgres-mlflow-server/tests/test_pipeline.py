"""The churn pipeline against PostgreSQL and an MLflow tracking server."""

from __future__ import annotations

import uuid
from pathlib import Path

from generate_data import generate
from pipeline import churn_pipeline

CUSTOMERS = 300
BAD_PLANS = 3  # customers the generator gives an unknown plan


def test_pipeline_trains_promotes_and_publishes_each_key_once(blocks: Path) -> None:
    from knot_prefect import MLflowTracking, SqlWarehouse

    assert generate(customers=CUSTOMERS, seed=5)["customers"] == CUSTOMERS

    # The tracking server outlives the test: a model of its own for each run, so a
    # second run starts without a champion too.
    model = f"churn-recipe-pg-{uuid.uuid4().hex[:8]}"
    first = churn_pipeline(model_name=model)
    assert first["training"]["promotion"]["decision"] == "promoted"
    client = MLflowTracking.load("mlflow-server").get_client()
    champion = client.get_model_version_by_alias(model, "champion")
    assert int(champion.version) == first["training"]["model_version"]

    churn_pipeline(model_name=model)
    counts = SqlWarehouse.load("pg-warehouse").read(
        "select customer_id, count(*) as n from churn_predictions group by customer_id"
    )
    assert len(counts) == CUSTOMERS - BAD_PLANS
    assert set(counts["n"]) == {1}
