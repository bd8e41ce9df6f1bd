"""Feast definitions of the churn demo: customers and their daily activity.

A plain Feast repo file: `feast apply` works on it without knot. Each view reads
``data/<view>.parquet`` beside this file, exported from the demo warehouse.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

DATA = Path(__file__).resolve().parent / "data"

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A paying customer.",
)


def customer_view(name: str, timestamp_field: str, **options: Any) -> FeatureView:
    """An online view of ``customer`` over ``data/<name>.parquet``.

    ``options`` are the view's other ``FeatureView`` arguments (ttl, schema, ...).
    """
    source = FileSource(name=f"{name}_source", path=str(DATA / f"{name}.parquet"),
                        timestamp_field=timestamp_field)
    return FeatureView(name=name, entities=[customer], source=source, online=True, **options)


customer_activity = customer_view(
    "customer_activity",
    timestamp_field="event_timestamp",
    ttl=timedelta(days=14),
    schema=[
        Field(name="sessions_7d", dtype=Int64),
        Field(name="minutes_7d", dtype=Float64),
        Field(name="tickets_14d", dtype=Int64),
        Field(name="failed_payments_14d", dtype=Int64),
    ],
    description="Rolling activity of a customer, one row per day.",
)

customer_profile = customer_view(
    "customer_profile",
    timestamp_field="signup_at",
    ttl=timedelta(days=3650),
    schema=[Field(name="monthly_fee", dtype=Float64)],
    description="What a customer pays each month.",
)

churn_model = FeatureService(
    name="churn_model",
    features=[customer_activity, customer_profile],
    description="The features the churn model is trained and scored on.",
)
