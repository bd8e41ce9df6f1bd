"""Feast definitions of the churn pipeline, read straight from the BigQuery dataset.

A plain Feast repo file: `feast apply` works on it without knot. The sources are the
tables generate_data.py writes into ``$GCP_PROJECT.$BQ_DATASET``.
"""

import os
from datetime import timedelta

from feast import BigQuerySource, Entity, FeatureService, FeatureView, Field, ValueType
from feast.types import Float64, Int64

DATASET = f"{os.environ.get('GCP_PROJECT', 'your-project')}.{os.environ.get('BQ_DATASET', 'ml')}"

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A paying customer.",
)

activity_source = BigQuerySource(
    name="customer_activity_source",
    table=f"{DATASET}.customer_activity",
    timestamp_field="event_timestamp",
)

customer_activity = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=14),
    schema=[
        Field(name="sessions_7d", dtype=Int64),
        Field(name="minutes_7d", dtype=Float64),
        Field(name="tickets_14d", dtype=Int64),
        Field(name="failed_payments_14d", dtype=Int64),
    ],
    source=activity_source,
    online=True,
    description="Rolling activity of a customer, one row per day.",
)

profile_source = BigQuerySource(
    name="customer_profile_source",
    table=f"{DATASET}.customers",
    timestamp_field="signup_at",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=3650),
    schema=[Field(name="monthly_fee", dtype=Float64)],
    source=profile_source,
    online=True,
    description="What a customer pays each month.",
)

churn_model = FeatureService(
    name="churn_model",
    features=[customer_activity, customer_profile],
    description="The features the churn model is trained and scored on.",
)
