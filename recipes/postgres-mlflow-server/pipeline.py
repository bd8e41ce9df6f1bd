"""The churn pipeline on PostgreSQL and an MLflow tracking server.

Refresh features, train and promote, score with lineage: the same knot flow templates
as on a laptop, with block documents that point at a shared database and server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.states import State

from knot_prefect.flows import batch_inference_flow, feature_materialization_flow, training_flow

BLOCKS = {
    "warehouse": "pg-warehouse",
    "feature_store": "pg-features",
    "tracking": "mlflow-server",
}


# The churn model's rows, keys, label and features (edit these for your own table).
TRAINING = {
    "entity_sql": (
        "select customer_id, label_timestamp as event_timestamp, churned from churn_labels"
    ),
    "target": "churned", "key_columns": ["customer_id"], "timestamp_column": "event_timestamp",
    "task": "binary", "features": "churn_model",
    "trainer": "knot_prefect.demo.model:train_churn_classifier",
}
SCORING = {
    "entity_sql": "select customer_id, plan from customers", "features": "churn_model",
    "key_columns": ["customer_id"], "quarantine_table": "churn_scoring_quarantine",
}

def _value(result: Any) -> Any:
    # A subflow that finished with warnings returns its state.
    return result.result() if isinstance(result, State) else result


@flow(name="churn-pipeline-postgres", log_prints=True)
def churn_pipeline(
    model_name: str = "churn-model",
    as_of: datetime | None = None,
    output_table: str = "churn_predictions",
) -> dict[str, Any]:
    """Materialize features, train a challenger (promoted if it wins), score everyone.

    Args:
        model_name: Registered model name on the MLflow server.
        as_of: Point in time of the scoring features (default: now).
        output_table: PostgreSQL table receiving the predictions (upserted by key).

    Returns:
        The training and scoring summaries.
    """
    feature_materialization_flow(BLOCKS["feature_store"])
    training = _value(training_flow(
        **BLOCKS, **TRAINING, contract="churn-labels", model_name=model_name,
    ))
    scoring = _value(batch_inference_flow(
        **BLOCKS, **SCORING, contract="churn-scoring", model_name=model_name, as_of=as_of,
        output_table=output_table,
    ))
    print(f"model {training['model_name']} v{training['model_version']}: "
          f"{training['promotion']['decision']}; {scoring['rows_published']} predictions "
          f"upserted into {scoring['output_table']}")
    return {"training": training, "scoring": scoring}


if __name__ == "__main__":
    churn_pipeline()
