"""Built-in trainers: gradient boosting on tabular data with numeric and string columns.

Each trainer follows :mod:`knot_prefect.trainers.contract`: it fits a scikit-learn
pipeline (string columns ordinal-encoded, numeric ones passed as floats, date/time
columns left out) and logs it to the active MLflow run with the ``cloudpickle``
serialization, which loads back without an allow-list of types. Classifiers are
logged to predict class probabilities, which knot turns into one clear prediction
shape (see :mod:`knot_prefect.tasks.prediction_shape`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from knot_prefect.trainers.contract import TrainerContractError, check_task, infer_task

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("knot_prefect.trainers")

TASK_METADATA_KEY = "knot_task"
# Rarer categories than this many distinct ones are grouped (HistGradientBoosting's limit).
MAX_CATEGORIES = 250


def gradient_boosting(
    data: pd.DataFrame, target: str, params: dict[str, Any], task: str | None = None
) -> str:
    """scikit-learn's HistGradientBoosting classifier or regressor; no extra dependency.

    Args:
        data: Input columns and the ``target`` column.
        target: The label column.
        params: Keyword arguments of ``HistGradientBoostingClassifier`` /
            ``HistGradientBoostingRegressor`` (e.g. ``max_iter``, ``learning_rate``).
        task: ``binary``, ``multiclass`` or ``regression``; inferred from the label
            when None.

    Returns:
        The URI of the logged model.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def build(resolved: str, categorical: list[bool]) -> Any:
        kind = (HistGradientBoostingRegressor if resolved == "regression"
                else HistGradientBoostingClassifier)
        arguments = {"categorical_features": categorical or None, "random_state": 0, **params}
        return kind(**arguments)

    return fit_and_log(build, data, target, task)


def xgboost(
    data: pd.DataFrame, target: str, params: dict[str, Any], task: str | None = None
) -> str:
    """XGBoost's scikit-learn estimators (``pip install xgboost``); labels 0..k-1."""
    return _fit_estimator_pair(
        "xgboost", "XGBRegressor", "XGBClassifier", params, data, target, task
    )


def lightgbm(
    data: pd.DataFrame, target: str, params: dict[str, Any], task: str | None = None
) -> str:
    """LightGBM's scikit-learn estimators (``pip install lightgbm``)."""
    return _fit_estimator_pair(
        "lightgbm", "LGBMRegressor", "LGBMClassifier", {"verbose": -1, **params}, data,
        target, task,
    )


def _fit_estimator_pair(
    package: str,
    regressor: str,
    classifier: str,
    params: dict[str, Any],
    data: pd.DataFrame,
    target: str,
    task: str | None,
) -> str:
    # A library's scikit-learn API: one class for regression, one for classification.
    module = _optional(package)

    def build(resolved: str, categorical: list[bool]) -> Any:
        estimator = regressor if resolved == "regression" else classifier
        return getattr(module, estimator)(**params)

    return fit_and_log(build, data, target, task, extra_requirement=package)


def split_columns(data: pd.DataFrame, target: str) -> tuple[list[str], list[str], list[str]]:
    """Numeric, categorical (text, category, boolean) and left-out columns of ``data``.

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"a": [1], "b": ["x"], "t": [pd.Timestamp(0)], "y": [0]})
        >>> split_columns(frame, "y")
        (['a'], ['b'], ['t'])
    """
    import pandas as pd

    numeric: list[str] = []
    categorical: list[str] = []
    left_out: list[str] = []
    for name in data.columns:
        if name == target:
            continue
        dtype = data[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(dtype):
            numeric.append(name)
        elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            categorical.append(name)
        else:
            left_out.append(name)
    return numeric, categorical, left_out


def fit_and_log(
    build: Callable[[str, list[bool]], Any],
    data: pd.DataFrame,
    target: str,
    task: str | None,
    extra_requirement: str | None = None,
) -> str:
    """Fit ``build(task, categorical_mask)`` behind the column encoding and log it.

    Returns:
        The URI of the model logged in the active MLflow run.
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.pipeline import Pipeline

    if target not in data.columns:
        raise TrainerContractError(
            f"target={target!r} is not a column of the training data; its columns are "
            f"{list(data.columns)}."
        )
    resolved = check_task(task) if task else infer_task(data[target])
    numeric, categorical, left_out = split_columns(data, target)
    if left_out:
        logger.info("Leaving out columns the trainer cannot use: %s", left_out)
    if not numeric and not categorical:
        raise TrainerContractError(
            f"No numeric or text input columns besides {target!r} in {list(data.columns)}."
        )
    inputs = data[[*categorical, *numeric]]
    labels = data[target]
    if resolved != "regression" and labels.nunique() < 2:
        raise TrainerContractError(
            f"A {resolved} model needs at least two classes in {target!r}; the training "
            f"rows hold only {labels.unique().tolist()}."
        )
    pipeline = Pipeline([
        ("columns", column_encoder(categorical, numeric)),
        ("model", build(resolved, [True] * len(categorical) + [False] * len(numeric))),
    ])
    pipeline.fit(inputs, labels)
    classifier = resolved != "regression"
    sample = inputs.head(100)
    output = pipeline.predict_proba(sample) if classifier else pipeline.predict(sample)
    requirements = mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True)
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=infer_signature(sample, output),
        pyfunc_predict_fn="predict_proba" if classifier else "predict",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=[*requirements, *([extra_requirement] if extra_requirement else [])],
        metadata={TASK_METADATA_KEY: resolved},
    )
    return str(info.model_uri)


def column_encoder(categorical: list[str], numeric: list[str]) -> Any:
    """Text columns as ordinal codes (unknown and missing values as NaN), numbers as floats."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan,
        encoded_missing_value=np.nan, max_categories=MAX_CATEGORIES,
    )
    return ColumnTransformer(
        [
            ("categorical", make_pipeline(FunctionTransformer(_as_text), encoder), categorical),
            ("numeric", FunctionTransformer(_as_float), numeric),
        ],
        verbose_feature_names_out=False,
    )


def _as_text(frame: Any) -> Any:
    import numpy as np

    # One representation of "missing" whatever the column's dtype (None, NA, NaN).
    return frame.astype(object).where(frame.notna(), np.nan)


def _as_float(frame: Any) -> Any:
    return frame.astype("float64")


def _optional(module_name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError:
        raise TrainerContractError(
            f"The {module_name} trainer needs the {module_name} package: "
            f"pip install {module_name}, or use trainer='gradient_boosting'."
        ) from None
