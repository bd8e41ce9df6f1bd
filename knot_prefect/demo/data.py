"""A seeded, realistic customer-churn dataset for the demo and the recipes.

Three tables, as a product team's warehouse would hold them:

- ``customers``: one row per customer (plan, country, monthly fee, signup time);
- ``customer_activity``: daily activity per customer with an ``event_timestamp``
  (sessions, minutes, support tickets, failed payments) plus rolling aggregates, the
  source of the Feast feature view;
- ``churn_labels``: whether a customer churned in the 30 days after a label time.

Churn depends on the activity the customer showed *before* the label time, so a model
trained on point-in-time correct features learns a real signal.

Examples:
    >>> tables = generate_churn_dataset(customers=50, days=10, seed=1)
    >>> sorted(tables)
    ['churn_labels', 'customer_activity', 'customers']
    >>> len(tables["customer_activity"])
    500
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PLANS = ("basic", "pro", "enterprise")
PLAN_FEES = {"basic": 19.0, "pro": 49.0, "enterprise": 199.0}
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES")
# The last day of generated activity; fixed so every run of a seed is identical.
DATASET_END = datetime(2026, 11, 1, tzinfo=UTC)


def generate_churn_dataset(
    customers: int = 5_000, days: int = 20, seed: int = 7, end: datetime = DATASET_END
) -> dict[str, pd.DataFrame]:
    """Generate the three demo tables.

    Args:
        customers: Number of customers.
        days: Days of activity per customer (rows of activity = customers x days).
        seed: Random seed; the same seed gives the same tables.
        end: Timestamp of the last activity day (UTC).

    Returns:
        ``customers``, ``customer_activity`` and ``churn_labels`` frames.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1, dtype="int64")
    plan = rng.choice(PLANS, size=customers, p=[0.6, 0.3, 0.1])
    engagement = rng.gamma(shape=2.0, scale=1.0, size=customers)  # latent, per customer
    signup = end - pd.to_timedelta(rng.integers(days + 30, 900, size=customers), unit="D")
    customers_frame = pd.DataFrame(
        {
            "customer_id": ids,
            "plan": plan,
            "country": rng.choice(COUNTRIES, size=customers),
            "monthly_fee": np.array([PLAN_FEES[p] for p in plan]),
            "signup_at": signup,
        }
    )

    day_offsets = np.arange(days)
    timestamps = pd.DatetimeIndex(
        [end - timedelta(days=int(days - 1 - d)) for d in day_offsets]
    )
    customer_col = np.repeat(ids, days)
    day_col = np.tile(day_offsets, customers)
    # Engagement decays for customers who are about to churn.
    decay = np.repeat(rng.uniform(0.85, 1.02, size=customers), days) ** day_col
    rate = np.repeat(engagement, days) * decay
    sessions = rng.poisson(rate * 3)
    activity = pd.DataFrame(
        {
            "customer_id": customer_col,
            "event_timestamp": timestamps[day_col],
            "sessions": sessions.astype("int64"),
            "minutes": np.round(sessions * rng.gamma(2.0, 6.0, size=sessions.size), 1),
            "support_tickets": rng.poisson(0.05 + 0.1 / (1 + rate)).astype("int64"),
            "failed_payments": rng.binomial(1, 0.01 + 0.02 / (1 + rate)).astype("int64"),
        }
    )
    # Rows are customer-major with `days` consecutive days each, so rolling windows are
    # cumulative sums along the day axis of a (customers, days) matrix.
    def rolling(values: np.ndarray, window: int) -> np.ndarray:
        matrix = values.reshape(customers, days).astype("float64")
        total = np.cumsum(matrix, axis=1)
        total[:, window:] -= total[:, :-window].copy()
        return total.reshape(-1)

    activity["sessions_7d"] = rolling(activity["sessions"].to_numpy(), 7).astype("int64")
    activity["minutes_7d"] = np.round(rolling(activity["minutes"].to_numpy(), 7), 1)
    activity["tickets_14d"] = rolling(activity["support_tickets"].to_numpy(), 14).astype("int64")
    activity["failed_payments_14d"] = rolling(
        activity["failed_payments"].to_numpy(), 14
    ).astype("int64")

    # Labels: at the last day, did the customer churn in the following 30 days?
    last = activity.groupby("customer_id").tail(1).set_index("customer_id")
    fee = customers_frame.set_index("customer_id")["monthly_fee"]
    logit = (
        -1.0
        - 0.12 * last["sessions_7d"]
        + 0.6 * last["tickets_14d"]
        + 1.5 * last["failed_payments_14d"]
        + 0.004 * fee.loc[last.index]
        + rng.normal(0, 0.5, size=len(last))
    )
    churned = rng.random(len(last)) < 1 / (1 + np.exp(-logit.to_numpy()))
    labels = pd.DataFrame(
        {
            "customer_id": last.index.to_numpy(),
            "label_timestamp": pd.Timestamp(end),
            "churned": churned.astype("int64"),
        }
    )
    return {
        "customers": customers_frame,
        "customer_activity": activity.reset_index(drop=True),
        "churn_labels": labels,
    }
