"""A training function for ``tuning_flow`` on the demo's churn data.

``train_churn_trial`` is what the docs and the tuning benchmark search over: a
scikit-learn gradient-boosting classifier on one row per customer (the last day's
rolling activity and the monthly fee), scored by ROC AUC on a held-out quarter.

Examples:
    >>> output = train_churn_trial({"n_estimators": 5, "max_depth": 2, "customers": 300})
    >>> 0.5 < output.metrics["roc_auc"] <= 1.0
    True
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from knot_prefect.tuning.trial import TrialOutput

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d", "monthly_fee"]
TARGET = "churned"


@functools.lru_cache(maxsize=4)
def churn_table(customers: int = 4_000, seed: int = 7) -> pd.DataFrame:
    """One labelled row per customer, generated once per process and size."""
    from knot_prefect.demo.data import generate_churn_dataset

    tables = generate_churn_dataset(customers=customers, days=20, seed=seed)
    last = tables["customer_activity"].groupby("customer_id").tail(1)
    frame = last.merge(tables["customers"][["customer_id", "monthly_fee"]], on="customer_id")
    frame = frame.merge(tables["churn_labels"][["customer_id", TARGET]], on="customer_id")
    return frame[[*FEATURES, TARGET]].reset_index(drop=True)


def train_churn_trial(params: dict[str, Any]) -> TrialOutput:
    """Fit a gradient-boosting churn classifier with ``params``; return AUC and the model.

    Args:
        params: ``learning_rate``, ``n_estimators``, ``max_depth``, ``subsample`` (all
            optional), and ``customers`` (rows of the generated data, default 4000).

    Returns:
        ``roc_auc`` and ``accuracy`` on the held-out quarter, and the fitted model.
    """
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    data = churn_table(int(params.get("customers", 4_000)))
    train, test = train_test_split(data, test_size=0.25, random_state=0, stratify=data[TARGET])
    model = GradientBoostingClassifier(
        learning_rate=float(params.get("learning_rate", 0.1)),
        n_estimators=int(params.get("n_estimators", 100)),
        max_depth=int(params.get("max_depth", 3)),
        subsample=float(params.get("subsample", 1.0)),
        random_state=0,
    )
    model.fit(train[FEATURES], train[TARGET])
    probabilities = model.predict_proba(test[FEATURES])[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(test[TARGET], probabilities)),
        "accuracy": float(accuracy_score(test[TARGET], model.predict(test[FEATURES]))),
    }
    return TrialOutput(metrics=metrics, model=model)
