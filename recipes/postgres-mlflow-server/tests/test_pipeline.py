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

    # The database and the tracking server outlive the test (and may hold the quick
    # start's tables): a model and a predictions table of its own for each run.
    run = uuid.uuid4().hex[:8]
    model, output = f"churn-recipe-pg-{run}", f"churn_predictions_test_{run}"
    warehouse = SqlWarehouse.load("pg-warehouse")
    try:
        first = churn_pipeline(model_name=model, output_table=output)
        assert first["training"]["promotion"]["decision"] == "promoted"
        client = MLflowTracking.load("mlflow-server").get_client()
        champion = client.get_model_version_by_alias(model, "champion")
        assert int(champion.version) == first["training"]["model_version"]

        churn_pipeline(model_name=model, output_table=output)
        counts = warehouse.read(
            f"select customer_id, count(*) as n from {output} group by customer_id"
        )
        assert len(counts) == CUSTOMERS - BAD_PLANS
        assert set(counts["n"]) == {1}
    finally:
        warehouse.execute(f"drop table if exists {output}")
