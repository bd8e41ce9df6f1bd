"""The churn pipeline: refresh features, train and promote, score with lineage.

Every system is a block document of blocks.yaml; the flow code never changes when
they do. Run it locally with ``python pipeline.py`` or deploy it with prefect.yaml.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from generate_data import generate
from prefect import flow
from prefect.states import State

from knot_prefect.flows import batch_inference_flow, feature_materialization_flow, training_flow

BLOCKS = {
    "warehouse": "churn-warehouse",
    "feature_store": "churn-features",
    "tracking": "churn-mlflow",
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


@flow(name="churn-pipeline", log_prints=True)
def churn_pipeline(
    model_name: str = "churn-model",
    as_of: datetime | None = None,
    sample_customers: int = 0,
) -> dict[str, Any]:
    """Materialize features, train a challenger (promoted if it wins), score everyone.

    Args:
        model_name: Registered model name in MLflow.
        as_of: Point in time of the scoring features (default: now).
        sample_customers: When above 0, first (re)generate that many sample customers
            (for a container that starts without data).

    Returns:
        The training and scoring summaries.
    """
    if sample_customers > 0:
        print(f"sample data: {generate(customers=sample_customers)}")
    feature_materialization_flow(BLOCKS["feature_store"])
    training = _value(training_flow(
        **BLOCKS, **TRAINING, contract="churn-labels", model_name=model_name,
    ))
    scoring = _value(batch_inference_flow(
        **BLOCKS, **SCORING, contract="churn-scoring", model_name=model_name, as_of=as_of,
        output_table="churn_predictions",
    ))
    print(f"model {training['model_name']} v{training['model_version']}: "
          f"{training['promotion']['decision']}; {scoring['rows_published']} predictions "
          f"upserted into {scoring['output_table']}")
    return {"training": training, "scoring": scoring}


if __name__ == "__main__":
    churn_pipeline()
