"""Default parameters of the flow templates: the block documents of blocks/local.yaml
and the churn demo's tables, feature service and model."""

from __future__ import annotations

LOCAL_WAREHOUSE = "local-warehouse"
LOCAL_FEATURES = "local-features"
LOCAL_TRACKING = "local-mlflow"

DEMO_CONTRACT = "churn-labels"
DEMO_SCORING_CONTRACT = "churn-scoring"
DEMO_FEATURE_SERVICE = "churn_model"
DEMO_MODEL = "churn-model"
DEMO_TRAINER = "knot_prefect.demo.model:train_churn_classifier"
DEMO_ENTITY_SQL = (
    "select customer_id, label_timestamp as event_timestamp, churned from churn_labels"
)
DEMO_SCORING_SQL = "select customer_id, plan from customers"
DEMO_PREDICTIONS_TABLE = "churn_predictions"
