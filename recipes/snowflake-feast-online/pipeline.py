"""Train on Snowflake, score with online features from Feast, publish back to Snowflake.

Training builds point-in-time correct features from Feast's offline store; scoring
reads the latest values from the online store (``feature_source="online"``), the same
values an online service would see. Predictions are merged into Snowflake by key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.states import State

from knot_prefect.flows import batch_inference_flow, feature_materialization_flow, training_flow

BLOCKS = {
    "warehouse": "sf-warehouse",
    "feature_store": "sf-features",
    "tracking": "sf-mlflow",
}
# knot quotes Snowflake identifiers, so the tables and columns are lowercase as written.
LABELS_SQL = (
    'select "customer_id", "label_timestamp" as "event_timestamp", "churned" '
    'from "churn_labels"'
)
SCORING_SQL = 'select "customer_id", "plan" from "customers"'
SOURCES = {
    "customer_activity": (
        'select "customer_id", "event_timestamp", "sessions_7d", "minutes_7d", '
        '"tickets_14d", "failed_payments_14d" from "customer_activity"'
    ),
    "customer_profile": 'select "customer_id", "signup_at", "monthly_fee" from "customers"',
}


@task(retries=2)
def export_feature_sources(warehouse: str, feature_store: str) -> dict[str, int]:
    """Export the Feast sources from Snowflake into the repo's Parquet files.

    Feast's file offline store reads Parquet; exporting at the start of every run keeps
    the features as current as the warehouse, and lets a fresh container start empty.
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    source = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    data = Path(str(resolve_block(feature_store, FeastFeatureStore).repo_path)) / "data"
    data.mkdir(parents=True, exist_ok=True)
    exported = {}
    for name, sql in SOURCES.items():
        frame = source.read(sql)
        # Write next to the target, then swap: a retry never sees half a file.
        partial = data / f"{name}.parquet.partial"
        frame.to_parquet(partial, index=False)
        partial.replace(data / f"{name}.parquet")
        exported[name] = len(frame)
    return exported


def _value(result: Any) -> Any:
    # A subflow that finished with warnings returns its state.
    return result.result() if isinstance(result, State) else result


@flow(name="churn-pipeline-snowflake", log_prints=True)
def churn_pipeline(
    model_name: str = "churn-model", output_table: str = "churn_predictions"
) -> dict[str, Any]:
    """Export sources, materialize online, train a challenger, score with online features.

    Args:
        model_name: Registered model name in MLflow.
        output_table: Snowflake table receiving the predictions (merged by key).

    Returns:
        The materialization, training and scoring summaries.
    """
    export_feature_sources(BLOCKS["warehouse"], BLOCKS["feature_store"])
    materialized = feature_materialization_flow(BLOCKS["feature_store"])
    training = _value(training_flow(
        **BLOCKS, contract="churn-labels", entity_sql=LABELS_SQL, model_name=model_name,
        target="churned", key_columns=["customer_id"], timestamp_column="event_timestamp",
        task="binary", features="churn_model",
        trainer="knot_prefect.demo.model:train_churn_classifier",
    ))
    scoring = _value(batch_inference_flow(
        **BLOCKS, contract="churn-scoring", entity_sql=SCORING_SQL, features="churn_model",
        key_columns=["customer_id"], quarantine_table="churn_scoring_quarantine",
        feature_source="online", model_name=model_name, output_table=output_table,
    ))
    print(f"model {training['model_name']} v{training['model_version']}: "
          f"{training['promotion']['decision']}; {scoring['rows_published']} predictions "
          f"merged into {scoring['output_table']}")
    return {"materialized": materialized, "training": training, "scoring": scoring}


if __name__ == "__main__":
    churn_pipeline()
