"""A model's output as the service's answers, in knot's prediction shape.

The service answers requests with these rows, and the shadow's process scores its
batches with the same function, so both models' scores have one shape.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.serving.model_holder import ServedModel


def json_value(value: Any) -> Any:
    """A JSON-safe value: numpy scalars unwrapped, NaN and infinities as null."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _output_rows(output: Any, rows: int, classes: list[Any] | None) -> list[dict[str, Any]]:
    """One answer per entity, in knot's prediction shape, from what the model returned.

    ``prediction`` is the value (or a classifier's label); a binary classifier adds
    ``probability`` (of the positive class), a multiclass one ``probabilities`` (per
    class) - the batch table's ``probability`` and ``probability_<class>`` columns.
    """
    from knot_prefect.tasks.prediction_shape import PREDICTION, PROBABILITY, shape_predictions

    try:
        frame = shape_predictions(output, rows, classes)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} A served model must return one prediction per row."
                                 ) from None
    others = [c for c in frame.columns if c not in (PREDICTION, PROBABILITY)]
    prefix = f"{PROBABILITY}_"
    answers: list[dict[str, Any]] = []
    if len(frame.columns) == 1:  # one value per row, whatever the model named it
        return [{PREDICTION: json_value(value)} for value in frame.iloc[:, 0].tolist()]
    for record in frame.to_dict("records"):
        answer: dict[str, Any] = {PREDICTION: json_value(record.get(PREDICTION))}
        if PROBABILITY in record:
            answer[PROBABILITY] = json_value(record[PROBABILITY])
        if classes and all(c.startswith(prefix) for c in others) and others:
            answer["probabilities"] = {c.removeprefix(prefix): json_value(record[c])
                                       for c in others}
        elif others:
            # A model with several output columns of its own: their values, in order.
            answer[PREDICTION] = [json_value(record[c]) for c in frame.columns]
        answers.append(answer)
    return answers


def score_frame(served: ServedModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One answer per row of model inputs, in knot's prediction shape."""
    from knot_prefect.tasks.prediction_shape import model_classes

    return _output_rows(served.model.predict(frame), len(frame), model_classes(served.model))
