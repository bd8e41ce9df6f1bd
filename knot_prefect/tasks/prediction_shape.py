"""One shape of predictions per task, the same in batch inference, serving and monitoring.

- regression: ``prediction`` (the value);
- binary classification: ``prediction`` (the label) and ``probability`` (of the
  positive class, the larger of the two labels);
- multiclass classification: ``prediction`` (the label) and one
  ``probability_<class>`` column per class.

A classifier whose pyfunc flavor returns class probabilities (knot's built-in trainers,
or ``mlflow.sklearn.log_model(..., pyfunc_predict_fn="predict_proba")``) is recognised
by its classes (``classes_`` of the underlying model): one probability column per
class. Any other output keeps the model's own columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

PREDICTION = "prediction"
PROBABILITY = "probability"


def model_classes(model: Any) -> list[Any] | None:
    """The class labels of a classifier (a pyfunc model, a ``LoadedModel`` or an estimator).

    Examples:
        >>> from sklearn.linear_model import LogisticRegression
        >>> model_classes(LogisticRegression().fit([[0.0], [1.0]], ["no", "yes"]))
        ['no', 'yes']
    """
    inner = getattr(model, "model", None)  # LoadedModel, ServedModel
    if inner is not None and not hasattr(model, "classes_"):
        model = inner
    raw = model
    get_raw = getattr(model, "get_raw_model", None)
    if callable(get_raw):
        try:
            raw = get_raw()
        except Exception:
            return None
    classes = getattr(raw, "classes_", None)
    return None if classes is None else list(classes.tolist() if hasattr(classes, "tolist")
                                              else classes)


def probability_column(label: Any) -> str:
    """Name of the probability column of one class of a multiclass model.

    Examples:
        >>> probability_column("setosa"), probability_column(2)
        ('probability_setosa', 'probability_2')
    """
    return f"{PROBABILITY}_{label}"


def shape_predictions(
    output: Any, rows: int, classes: list[Any] | None, output_column: str = PREDICTION
) -> pd.DataFrame:
    """Turn what a model returned for ``rows`` rows into knot's prediction frame.

    Args:
        output: The model's output (array, Series or DataFrame).
        rows: Rows that were scored; the output must hold one prediction per row.
        classes: The model's classes (see :func:`model_classes`), None for a regressor.
        output_column: Name of the prediction column.

    Raises:
        ConfigurationError: When the output does not hold one prediction per row.

    Examples:
        >>> import numpy as np
        >>> shape_predictions(np.array([[0.2, 0.8], [0.9, 0.1]]), 2, ["no", "yes"])
          prediction  probability
        0        yes          0.8
        1         no          0.1
        >>> list(shape_predictions(np.eye(3), 3, ["a", "b", "c"]).columns)
        ['prediction', 'probability_a', 'probability_b', 'probability_c']
    """
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame) and not _probabilities(output.to_numpy(), classes):
        frame = output.reset_index(drop=True)
    elif isinstance(output, pd.Series):
        frame = output.reset_index(drop=True).to_frame(output_column)
    else:
        values = np.asarray(output)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values.reshape(len(values))
        if values.ndim == 1:
            frame = pd.DataFrame({output_column: values})
        elif _probabilities(values, classes):
            frame = _class_frame(values, classes or [], output_column)
        else:
            values = values.reshape(len(values), -1)
            frame = pd.DataFrame(
                values, columns=[f"{output_column}_{i}" for i in range(values.shape[1])]
            )
    if len(frame) != rows:
        raise ConfigurationError(
            f"The model returned {len(frame)} predictions for {rows} rows; it must "
            "return one per row."
        )
    return frame


def _probabilities(values: Any, classes: list[Any] | None) -> bool:
    return bool(classes) and values.ndim == 2 and values.shape[1] == len(classes or [])


def _class_frame(values: Any, classes: list[Any], output_column: str) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    labels = np.asarray(classes, dtype=object)[values.argmax(axis=1)]
    frame = pd.DataFrame({output_column: pd.Series(labels).infer_objects()})
    if len(classes) == 2:
        frame[PROBABILITY] = values[:, 1].astype("float64")
    else:
        for position, label in enumerate(classes):
            frame[probability_column(label)] = values[:, position].astype("float64")
    return frame
