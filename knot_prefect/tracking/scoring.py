"""Score a model on labelled data the same way in ``evaluate`` and ``promote``.

Metric names: ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` and
``log_loss`` for classification (binary scores use the larger label as the positive
class; more classes use macro averages and one-vs-rest AUC); ``rmse``, ``mae`` and ``r2``
for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Task = Literal["classification", "regression"]

LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "log_loss"})
DEFAULT_METRIC: dict[str, str] = {"classification": "f1", "regression": "rmse"}


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better.

    Examples:
        >>> higher_is_better("f1"), higher_is_better("rmse")
        (True, False)
    """
    return metric not in LOWER_IS_BETTER


@dataclass
class ScoredPredictions:
    """Predictions of a model next to the truth, ready for metrics and plots."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_proba: np.ndarray | None
    classes: list[Any]


def split_features(
    data: pd.DataFrame, target: str, feature_names: list[str] | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Separate the target column from the features the model expects.

    Raises:
        ConfigurationError: When the target or an expected feature column is missing.
    """
    if target not in data.columns:
        raise ConfigurationError(
            f"Target column {target!r} is not in the evaluation data; its columns are "
            f"{list(data.columns)}. Pass target= the label column's name."
        )
    features = data.drop(columns=[target])
    if feature_names:
        missing = [name for name in feature_names if name not in features.columns]
        if missing:
            raise ConfigurationError(
                f"The evaluation data lacks the model's feature columns {missing}; the "
                f"model expects {feature_names}."
            )
        features = features[feature_names]
    return features, data[target]


def load_for_scoring(model_uri: str) -> Any:
    """Load a model so it can give class probabilities when its flavor allows.

    scikit-learn models load natively (``predict_proba`` available); any other flavor
    loads as a pyfunc model.
    """
    import mlflow

    info = mlflow.models.get_model_info(model_uri)
    if "sklearn" in info.flavors:
        return mlflow.sklearn.load_model(model_uri)
    return mlflow.pyfunc.load_model(model_uri)


def feature_names_of(model: Any) -> list[str] | None:
    """The input column names a model expects, from its signature or sklearn metadata."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is not None and schema.has_input_names():
        return list(schema.input_names())
    return None


def predict_for_scoring(
    model: Any, data: pd.DataFrame, target: str, task: Task
) -> ScoredPredictions:
    """Run ``model`` over ``data`` (minus ``target``) and keep what metrics need."""
    import numpy as np

    features, truth = split_features(data, target, feature_names_of(model))
    y_pred = np.asarray(model.predict(features)).reshape(len(features), -1)[:, 0]
    y_proba = None
    classes: list[Any] = []
    if task == "classification":
        if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
            y_proba = np.asarray(model.predict_proba(features))
            classes = list(model.classes_)
        else:
            classes = sorted(set(truth.tolist()) | set(y_pred.tolist()))
    return ScoredPredictions(
        y_true=truth.to_numpy(), y_pred=y_pred, y_proba=y_proba, classes=classes
    )


def metrics_for(predictions: ScoredPredictions, task: Task) -> dict[str, float]:
    """Compute the metrics of ``task`` from scored predictions."""
    if task == "classification":
        return _classification_metrics(predictions)
    if task == "regression":
        return _regression_metrics(predictions)
    raise ConfigurationError(f"task must be 'classification' or 'regression', not {task!r}.")


def score(model: Any, data: pd.DataFrame, target: str, task: Task) -> dict[str, float]:
    """Score a model (or a model URI) on labelled data.

    Examples:
        >>> import pandas as pd
        >>> from sklearn.linear_model import LinearRegression
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 3.0, 5.0, 7.0]})
        >>> model = LinearRegression().fit(frame[["x"]], frame["y"])
        >>> round(score(model, frame, "y", "regression")["r2"], 6)
        1.0
    """
    if isinstance(model, str):
        model = load_for_scoring(model)
    return metrics_for(predict_for_scoring(model, data, target, task), task)


def _classification_metrics(p: ScoredPredictions) -> dict[str, float]:
    from sklearn import metrics

    binary = len(p.classes) == 2
    average = "binary" if binary else "macro"
    positive = p.classes[1] if binary else 1
    result = {
        "accuracy": float(metrics.accuracy_score(p.y_true, p.y_pred)),
        "precision": float(
            metrics.precision_score(
                p.y_true, p.y_pred, average=average, pos_label=positive, zero_division=0
            )
        ),
        "recall": float(
            metrics.recall_score(
                p.y_true, p.y_pred, average=average, pos_label=positive, zero_division=0
            )
        ),
        "f1": float(
            metrics.f1_score(
                p.y_true, p.y_pred, average=average, pos_label=positive, zero_division=0
            )
        ),
    }
    if p.y_proba is not None and len(set(p.y_true.tolist())) > 1:
        if binary:
            result["roc_auc"] = float(metrics.roc_auc_score(p.y_true == positive, p.y_proba[:, 1]))
        else:
            result["roc_auc"] = float(
                metrics.roc_auc_score(p.y_true, p.y_proba, multi_class="ovr", labels=p.classes)
            )
        result["log_loss"] = float(metrics.log_loss(p.y_true, p.y_proba, labels=p.classes))
    return result


def _regression_metrics(p: ScoredPredictions) -> dict[str, float]:
    from sklearn import metrics

    return {
        "rmse": float(metrics.root_mean_squared_error(p.y_true, p.y_pred)),
        "mae": float(metrics.mean_absolute_error(p.y_true, p.y_pred)),
        "r2": float(metrics.r2_score(p.y_true, p.y_pred)),
    }
