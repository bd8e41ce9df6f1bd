"""The churn demo's names, passed to the flow templates by ``knot demo`` and the recipes."""

from __future__ import annotations

from typing import Any

CONTRACT = "churn-labels"
SCORING_CONTRACT = "churn-scoring"
FEATURE_SERVICE = "churn_model"
MODEL = "churn-model"
TRAINER = "knot_prefect.demo.model:train_churn_classifier"
TARGET = "churned"
KEYS = ["customer_id"]
ENTITY_SQL = "select customer_id, label_timestamp as event_timestamp, churned from churn_labels"
SCORING_SQL = "select customer_id, plan from customers"
PREDICTIONS_TABLE = "churn_predictions"
QUARANTINE_TABLE = "churn_scoring_quarantine"


def training_parameters(**overrides: Any) -> dict[str, Any]:
    """``training_flow`` parameters of the demo, with ``overrides`` applied.

    Examples:
        >>> training_parameters(model_name="churn-test")["model_name"]
        'churn-test'
    """
    return {
        "contract": CONTRACT, "entity_sql": ENTITY_SQL, "features": FEATURE_SERVICE,
        "target": TARGET, "key_columns": KEYS, "timestamp_column": "event_timestamp",
        "model_name": MODEL, "trainer": TRAINER, "task": "binary", **overrides,
    }


def scoring_parameters(**overrides: Any) -> dict[str, Any]:
    """``batch_inference_flow`` parameters of the demo, with ``overrides`` applied."""
    return {
        "contract": SCORING_CONTRACT, "quarantine_table": QUARANTINE_TABLE,
        "entity_sql": SCORING_SQL, "features": FEATURE_SERVICE, "model_name": MODEL,
        "key_columns": KEYS, "output_table": PREDICTIONS_TABLE, **overrides,
    }


def monitoring_parameters(**overrides: Any) -> dict[str, Any]:
    """``monitoring_flow`` parameters of the demo, with ``overrides`` applied."""
    return {
        "model_name": MODEL, "predictions_table": PREDICTIONS_TABLE,
        "features": FEATURE_SERVICE, "key_columns": KEYS, **overrides,
    }
