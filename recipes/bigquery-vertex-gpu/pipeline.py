"""Train and score the churn model on BigQuery data, as a Vertex AI GPU custom job.

The flow is the same composition as on a laptop; only the block documents (BigQuery,
Feast's BigQuery offline store, an MLflow server) and the work pool change.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from knot_prefect.flows import batch_inference_flow, feature_materialization_flow, training_flow

BLOCKS = {
    "warehouse": "bq-warehouse",
    "feature_store": "bq-features",
    "tracking": "bq-mlflow",
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


@flow(name="churn-pipeline-bigquery", log_prints=True)
def churn_pipeline(
    model_name: str = "churn-model",
    trainer: str = "knot_prefect.demo.model:train_churn_classifier",
    output_table: str = "churn_predictions",
) -> dict[str, Any]:
    """Materialize features, train a challenger on the job's GPU, score everyone.

    Args:
        model_name: Registered model name on the MLflow server.
        trainer: Import path of ``fn(data, params)``; put your GPU trainer here (the
            gpu-training recipe has a PyTorch one).
        output_table: BigQuery table receiving the predictions (merged by key).

    Returns:
        The training and scoring summaries.
    """
    feature_materialization_flow(BLOCKS["feature_store"])
    training = _value(training_flow(
        **BLOCKS, **{**TRAINING, "trainer": trainer}, contract="churn-labels",
        model_name=model_name,
    ))
    scoring = _value(batch_inference_flow(
        **BLOCKS, **SCORING, contract="churn-scoring", model_name=model_name,
        output_table=output_table,
    ))
    return {"training": training, "scoring": scoring}


if __name__ == "__main__":
    churn_pipeline()
