"""The ``train`` task: run a team's own training function under a tracked MLflow run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from prefect import task

from knot_prefect.errors import ConfigurationError
from knot_prefect.tracking.skops import skops_trusted_types

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

MODEL_URI_TAG = "knot.model_uri"


def train_model(
    train_fn: Callable[..., Any],
    data: Any,
    params: Mapping[str, Any] | None = None,
    tracking: MLflowTracking | str | None = None,
    *,
    target: str | None = None,
    task: str | None = None,
    run_name: str = "train",
    autolog_models: bool = False,
) -> str:
    """Call ``train_fn(data, target, params)`` inside a tracked MLflow run with autologging on.

    ``train_fn`` follows knot's trainer contract (:mod:`knot_prefect.trainers.contract`):
    ``fn(data, target, params)``, with a ``task=`` keyword when it accepts one; the
    older ``fn(data, params)`` form is called as such.

    ``params`` are logged as run parameters; autologging records what each library
    knows (estimator parameters, training metrics). What ``train_fn`` returns decides
    the model:

    - a fitted scikit-learn estimator or pipeline: logged with the ``sklearn`` flavor and
      a signature inferred from the training features;
    - a string: taken as the URI of a model it logged itself;
    - None: the model logged during the run (by ``train_fn`` or by autologging).

    Args:
        train_fn: The team's training function (see the trainer contract).
        data: Whatever ``train_fn`` expects, usually a pandas DataFrame.
        params: Hyperparameters, passed on and logged.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.
        target: The label column of ``data``. The model signature uses the columns the
            estimator saw in ``fit``, or else every column but ``target``.
        task: ``binary``, ``multiclass`` or ``regression``, passed to a trainer taking a
            ``task`` keyword. A returned classifier is then logged to predict class
            probabilities, which scoring turns into a label and probabilities.
        run_name: Name of the MLflow run.
        autolog_models: Let autologging log models too (slower: it infers pip
            requirements in a subprocess). Off, knot logs the returned model itself
            with the flavor's default requirements.

    Returns:
        The model URI (``models:/<model id>``), ready for ``evaluate`` or
        ``register_model``.

    Examples:
        >>> from prefect import flow
        >>> import pandas as pd
        >>> from sklearn.linear_model import LogisticRegression
        >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
        >>> def fit(data, target, params):
        ...     return LogisticRegression(**params).fit(data[["x"]], data[target])
        >>> @flow
        ... def training():
        ...     return train(fit, frame, {"C": 1.0}, target="y")
        >>> training().startswith("models:/")
        True
    """
    import mlflow

    from knot_prefect.tracking.runs import tracked_run
    from knot_prefect.trainers.contract import call_trainer

    arguments = dict(params or {})
    with tracked_run(tracking, run_name=run_name) as run:
        if arguments:
            mlflow.log_params({key: _param_text(value) for key, value in arguments.items()})
        mlflow.autolog(
            log_models=autolog_models,
            log_input_examples=False,
            log_datasets=False,
            log_traces=False,
            silent=True,
        )
        try:
            result = call_trainer(train_fn, data, target, arguments, task)
        finally:
            mlflow.autolog(disable=True, silent=True)
        model_uri = _model_uri(result, data, target, run.info.experiment_id, run.info.run_id,
                               task)
        mlflow.set_tag(MODEL_URI_TAG, model_uri)
    return model_uri


train = task(name="train")(train_model)


def _param_text(value: Any) -> str:
    return str(value)[:6000]  # MLflow's limit on a parameter value.


def _model_uri(
    result: Any, data: Any, target: str | None, experiment_id: str, run_id: str,
    task: str | None = None,
) -> str:
    import mlflow

    if isinstance(result, str):
        return result
    if result is None:
        logged = mlflow.search_logged_models(
            experiment_ids=[experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
            order_by=[{"field_name": "creation_timestamp", "ascending": False}],
            max_results=1,
            output_format="list",
        )
        if not logged:
            raise ConfigurationError(
                "train_fn returned None and no model was logged in the run. Return the "
                "fitted model (or its MLflow model URI), log it with "
                "mlflow.<flavor>.log_model inside train_fn, or pass autolog_models=True."
            )
        return str(logged[0].model_uri)
    if _is_sklearn_estimator(result):
        return _log_sklearn(result, data, target, task)
    raise ConfigurationError(
        f"train_fn returned a {type(result).__name__}, which knot cannot log by itself "
        "(it logs scikit-learn estimators). Log it with mlflow.<flavor>.log_model inside "
        "train_fn and return the model URI, or return None with autolog_models=True."
    )


def _is_sklearn_estimator(value: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover - scikit-learn is part of the mlflow extra
        return False
    return isinstance(value, BaseEstimator)


def _log_sklearn(model: Any, data: Any, target: str | None, task: str | None = None) -> str:
    import mlflow
    from mlflow.models import infer_signature

    # A classifier of a known task predicts probabilities, shaped at scoring into the
    # label and the probability of each class.
    probabilities = task in ("binary", "multiclass") and hasattr(model, "predict_proba")
    predict = model.predict_proba if probabilities else model.predict
    signature = None
    features = _training_features(model, data, target)
    if features is not None:
        sample = features.head(100)
        signature = infer_signature(sample, predict(sample))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        pyfunc_predict_fn="predict_proba" if probabilities else "predict",
        # Known requirements instead of inferring them in a subprocess (seconds).
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        skops_trusted_types=skops_trusted_types(model),
    )
    return str(info.model_uri)


def _training_features(model: Any, data: Any, target: str | None) -> pd.DataFrame | None:
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        return None
    if target is not None and target not in data.columns:
        raise ConfigurationError(
            f"target={target!r} is not a column of the training data; its columns "
            f"are {list(data.columns)}."
        )
    # The columns the estimator saw in fit are its inputs, whatever else the data holds.
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(name in data.columns for name in names):
        return data[list(names)]
    if target is not None:
        return data.drop(columns=[target])
    return None
