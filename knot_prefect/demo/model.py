"""The demo's training function: a scaled logistic-regression churn classifier.

Any function ``fn(data, params)`` works with :func:`knot_prefect.tasks.train`; this one
is what ``knot demo`` and the churn recipe use. It logs its model itself so that the
pyfunc flavor returns churn *probabilities* at scoring time, while evaluation and
promotion load the native scikit-learn model (labels and probabilities).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TARGET = "churned"


def feature_columns(data: pd.DataFrame, target: str = TARGET) -> list[str]:
    """The numeric columns of ``data`` other than the target: the model's inputs."""
    return [c for c in data.columns if c != target and data[c].dtype.kind in "biuf"]


def train_churn_classifier(data: pd.DataFrame, params: dict[str, Any]) -> str:
    """Fit a churn classifier on ``data`` and log it to the active MLflow run.

    Args:
        data: Training rows: numeric feature columns and the ``churned`` label.
        params: ``C`` (inverse regularisation strength) and ``max_iter`` (both optional).

    Returns:
        The URI of the logged model.
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = feature_columns(data)
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 500))
        ),
    )
    model.fit(data[features], data[TARGET])
    sample = data[features].head(100)
    signature = infer_signature(sample, model.predict_proba(sample))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        pyfunc_predict_fn="predict_proba",
        # Known requirements instead of inferring them in a subprocess (seconds).
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
    )
    return str(info.model_uri)
