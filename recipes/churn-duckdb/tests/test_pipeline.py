"""The churn pipeline end to end on embedded services: DuckDB, local Feast, MLflow."""

from __future__ import annotations

from pathlib import Path

from generate_data import generate
from pipeline import churn_pipeline

CUSTOMERS = 300
BAD_PLANS = 3  # customers the generator gives an unknown plan


def test_pipeline_trains_promotes_and_publishes_each_key_once(blocks: Path) -> None:
    from knot_prefect import DuckDBWarehouse, MLflowTracking

    written = generate(customers=CUSTOMERS, seed=5)
    assert written["customers"] == CUSTOMERS

    first = churn_pipeline(model_name="churn-recipe")
    assert first["training"]["promotion"]["decision"] == "promoted"
    assert first["scoring"]["rows_quarantined"] == BAD_PLANS
    client = MLflowTracking.load("churn-mlflow").get_client()
    champion = client.get_model_version_by_alias("churn-recipe", "champion")
    assert int(champion.version) == first["training"]["model_version"]
    # The quality checks are logged with the evaluation, in the block's store.
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs([experiment.experiment_id])
    assert any(key.startswith("check.") for run in runs for key in run.data.metrics)

    second = churn_pipeline(model_name="churn-recipe")  # same data: the champion stays
    assert second["training"]["promotion"]["decision"] == "kept-champion"

    warehouse = DuckDBWarehouse.load("churn-warehouse")
    counts = warehouse.read(
        "select customer_id, count(*) as n, max(model_version) as v "
        "from churn_predictions group by customer_id"
    )
    assert len(counts) == CUSTOMERS - BAD_PLANS
    assert set(counts["n"]) == {1}
    assert set(counts["v"]) == {first["training"]["model_version"]}
