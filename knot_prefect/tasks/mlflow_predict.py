"""Batch scoring: load a registered model by alias and predict in chunks.

``predict_frame`` is a plain function taking the frame first, so it can run inside Dask
partitions (``ddf.map_partitions(predict_frame, model)``); ``predict`` is the task form.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import ConfigurationError
from knot_prefect.run_context import log_in_run
from knot_prefect.tracking.aliases import RegistryError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.pyfunc import PyFuncModel

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

DEFAULT_BATCH_ROWS = 100_000


@dataclass
class LoadedModel:
    """A registered model loaded for scoring, with where it came from (for lineage).

    Attributes:
        name: Registered model name.
        alias: The alias it was loaded by.
        version: The version the alias pointed at when loaded.
        model: The pyfunc model.
    """

    name: str
    alias: str
    version: int
    model: PyFuncModel

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``: pinned, unlike the alias, which may move later."""
        return f"models:/{self.name}/{self.version}"

    def predict(self, data: Any) -> Any:
        """Predict with the underlying pyfunc model."""
        return self.model.predict(data)


def load_model_by_alias(
    name: str, alias: str = "champion", tracking: MLflowTracking | str | None = None
) -> LoadedModel:
    """Load the version of ``name`` that ``alias`` points at, as a pyfunc model.

    Args:
        name: Registered model name.
        alias: Alias such as ``"champion"``.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.

    Returns:
        The model with its name, alias and resolved version.

    Raises:
        RegistryError: The model does not exist (lists registered models) or the alias
            does not (lists the model's aliases).

    Examples:
        >>> from prefect import flow
        >>> @flow
        ... def score(frame):
        ...     model = load_model("churn", "champion")
        ...     return predict(model, frame)
    """
    import mlflow

    from knot_prefect.tracking.aliases import require_model
    from knot_prefect.tracking.fluent import fluent_store
    from knot_prefect.tracking.resolve import resolve_tracking

    block = resolve_tracking(tracking)
    registered = require_model(block.get_client(), name)
    aliases: dict[str, Any] = dict(registered.aliases)
    if alias not in aliases:
        existing = ", ".join(f"{a} -> version {v}" for a, v in sorted(aliases.items()))
        raise RegistryError(
            f"Registered model {name!r} has no alias {alias!r}. Existing aliases: "
            f"{existing or 'none (promote a version first)'}."
        )
    version = int(aliases[alias])
    with block.session(), fluent_store(block):
        # Load the pinned version so a concurrent promotion cannot swap it mid-load.
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    log_in_run(f"Loaded {name}@{alias} (version {version})")
    return LoadedModel(name=name, alias=alias, version=version, model=model)


load_model = task(name="load-model", cache_policy=NO_CACHE)(load_model_by_alias)


@task(name="predict", cache_policy=NO_CACHE)
def predict(
    model: LoadedModel | PyFuncModel | str | Any,
    df: pd.DataFrame,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    output_column: str = "prediction",
) -> pd.DataFrame:
    """Score ``df`` in chunks of ``batch_rows``; the task form of :func:`predict_frame`.

    Returns:
        Predictions with ``df``'s index (see :func:`predict_frame`).
    """
    result = predict_frame(df, model, batch_rows=batch_rows, output_column=output_column)
    log_in_run(f"Scored {len(df)} rows in batches of {batch_rows}")
    return result


def predict_frame(
    df: pd.DataFrame,
    model: LoadedModel | PyFuncModel | str | Any,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    output_column: str = "prediction",
) -> pd.DataFrame:
    """Score ``df`` in chunks of ``batch_rows`` rows; a plain function, fit for Dask.

    The frame comes first so the function can be handed to Dask's ``map_partitions``.
    Only the model's input columns (from its signature) are passed to it, so key and
    lineage columns may stay in ``df``; a missing input column fails before scoring.

    Args:
        df: Rows to score.
        model: A ``LoadedModel``, a pyfunc model, any object with ``predict``, or a model
            URI (loaded once per process, e.g. once per Dask worker).
        batch_rows: Rows per call to the model; bounds the memory used while scoring.
        output_column: Name of the prediction column (models returning several columns
            keep their own names).

    Returns:
        A frame with ``df``'s index and the prediction column(s), shaped by task: a
        regressor gives ``prediction``; a classifier returning class probabilities
        gives ``prediction`` (the label) and ``probability`` (binary) or one
        ``probability_<class>`` per class (see
        :mod:`knot_prefect.tasks.prediction_shape`).

    Examples:
        >>> import pandas as pd
        >>> from sklearn.linear_model import LinearRegression
        >>> train = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
        >>> model = LinearRegression().fit(train, [1.0, 3.0, 5.0])
        >>> predict_frame(pd.DataFrame({"x": [3.0, 4.0, 5.0]}), model, batch_rows=2)
           prediction
        0         7.0
        1         9.0
        2        11.0
    """
    return _concat(list(predict_batches(model, _chunks(df, batch_rows), output_column)), df)


def predict_batches(
    model: LoadedModel | PyFuncModel | str | Any,
    batches: Iterable[pd.DataFrame],
    output_column: str = "prediction",
) -> Iterator[pd.DataFrame]:
    """Score a stream of frames (e.g. read from Parquet in row groups) one at a time.

    Only one batch and its predictions are in memory at once, whatever the total size.

    Yields:
        The predictions of each batch, with that batch's index.
    """
    from knot_prefect.tasks.prediction_shape import model_classes

    predictor = _predictor(model)
    classes = model_classes(predictor)
    features: list[str] | None = None
    for batch in batches:
        if features is None:
            features = _feature_columns(predictor, batch)
        inputs = batch if not features else batch[features]
        yield _as_frame(predictor.predict(inputs), batch, output_column, classes)


def _chunks(df: pd.DataFrame, batch_rows: int) -> Iterator[pd.DataFrame]:
    if batch_rows < 1:
        raise ConfigurationError(f"batch_rows must be at least 1, not {batch_rows}.")
    for start in range(0, len(df), batch_rows):
        yield df.iloc[start : start + batch_rows]


def _predictor(model: Any) -> Any:
    if isinstance(model, str):
        return _load_uri(model)
    if not hasattr(model, "predict"):
        raise ConfigurationError(
            f"Cannot predict with a {type(model).__name__}: pass a model loaded with "
            "load_model, a pyfunc model, an estimator or a model URI."
        )
    return model


@functools.lru_cache(maxsize=4)
def _load_uri(model_uri: str) -> PyFuncModel:
    import mlflow

    return mlflow.pyfunc.load_model(model_uri)


def _feature_columns(predictor: Any, batch: pd.DataFrame) -> list[str] | None:
    from knot_prefect.tracking.scoring import feature_names_of

    inner = predictor.model if isinstance(predictor, LoadedModel) else predictor
    names = feature_names_of(inner)
    if not names:
        return None
    missing = [name for name in names if name not in batch.columns]
    if missing:
        extra = [column for column in batch.columns if column not in names]
        raise ConfigurationError(
            f"The rows to score lack the model's input columns {missing} (the model "
            f"expects {names}; columns not used by the model: {extra}). Add the "
            "missing features before scoring."
        )
    return names


def _as_frame(
    output: Any, batch: pd.DataFrame, output_column: str, classes: list[Any] | None
) -> pd.DataFrame:
    from knot_prefect.tasks.prediction_shape import shape_predictions

    frame = shape_predictions(output, len(batch), classes, output_column)
    frame.index = batch.index
    return frame


def _concat(parts: list[pd.DataFrame], df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if not parts:
        return pd.DataFrame({}, index=df.index[:0])
    return parts[0] if len(parts) == 1 else pd.concat(parts)
