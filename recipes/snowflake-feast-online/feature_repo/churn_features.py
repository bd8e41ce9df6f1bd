"""Feast definitions of the churn demo: customers and their daily activity.

A plain Feast repo file: `feast apply` works on it without knot. The Parquet sources are
exported from the demo warehouse into ``data/`` beside this file.
"""

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

DATA = Path(__file__).resolve().parent / "data"

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A paying customer.",
)

activity_source = FileSource(
    name="customer_activity_source",
    path=str(DATA / "customer_activity.parquet"),
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

profile_source = FileSource(
    name="customer_profile_source",
    path=str(DATA / "customer_profile.parquet"),
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
