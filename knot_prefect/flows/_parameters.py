"""How a flow template settles its parameters: explicit value, else the model spec,
else a generic default; what it cannot derive is required, with an example call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd
    from prefect.blocks.core import Block

    from knot_prefect.blocks.model_spec import ModelSpec

T = TypeVar("T")
B = TypeVar("B", bound="Block")

# One example call per flow, shown whenever a required parameter is missing.
EXAMPLES: dict[str, str] = {
    "training_flow": (
        'training_flow(entity_sql="analytics.loans", target="defaulted", '
        'key_columns=["loan_id"], model_name="loan-default")'
        ' or training_flow(spec="loan-default")'
    ),
    "batch_inference_flow": (
        'batch_inference_flow(entity_sql="analytics.loans", key_columns=["loan_id"], '
        'model_name="loan-default", output_table="analytics.loan_scores")'
        ' or batch_inference_flow(spec="loan-default")'
    ),
    "monitoring_flow": (
        'monitoring_flow(model_name="loan-default", predictions_table='
        '"analytics.loan_scores", key_columns=["loan_id"], entity_sql="analytics.loans")'
        ' or monitoring_flow(spec="loan-default")'
    ),
    "data_quality_flow": (
        'data_quality_flow("analytics.loans", contract="loans-contract")'
        ' or data_quality_flow(spec="loan-default")'
    ),
    "feature_materialization_flow": (
        'feature_materialization_flow("prod-features") or '
        'feature_materialization_flow(spec="loan-default")'
    ),
}


class MissingParameterError(ConfigurationError, TypeError):
    """A flow needs a value it cannot derive; the message names it and shows a call."""


class Settled:
    """Values of one flow run: explicit parameters first, then the spec's fields.

    Args:
        flow_name: The flow's function name (for error messages).
        spec: The model spec, or None.
    """

    def __init__(self, flow_name: str, spec: ModelSpec | None) -> None:
        self.flow_name = flow_name
        self.spec = spec

    def value(self, explicit: T, field: str | None = None) -> T:
        """``explicit`` when given, else the spec's ``field`` when set, else None."""
        if explicit is not None:
            return explicit
        if self.spec is not None and field is not None:
            from_spec = getattr(self.spec, field)
            if from_spec is not None and from_spec != []:
                return from_spec  # type: ignore[no-any-return]
        return explicit

    def or_default(self, explicit: T | None, field: str, default: T) -> T:
        """Like :meth:`value`, with ``default`` when neither gives one."""
        found = self.value(explicit, field)
        return default if found is None else found

    def required(self, explicit: T | None, parameter: str, field: str | None = None,
                 what: str = "") -> T:
        """Like :meth:`value`, but a missing value is an error naming ``parameter``.

        Raises:
            MissingParameterError: Neither the parameter nor the spec gives a value.
        """
        found = self.value(explicit, field)
        if found is None or found == "" or found == []:
            raise MissingParameterError(
                f"{self.flow_name} needs {parameter}=" + (f" ({what})" if what else "")
                + (f" or a spec whose {field} is set" if field else "")
                + f". Example: {EXAMPLES.get(self.flow_name, self.flow_name + '(...)')}."
            )
        return found


def settle(flow_name: str, spec: ModelSpec | str | None) -> Settled:
    """Load ``spec`` (block, document name or YAML path) and start settling values."""
    from knot_prefect.blocks.model_spec import load_model_spec

    return Settled(flow_name, load_model_spec(spec))


def key_columns_of(
    columns: Iterable[str],
    key_columns: list[str] | None,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    where: str,
) -> list[str]:
    """The entity key columns: the ones given, or the single column ending in ``_id``.

    A guess is logged; no or several candidates are refused, naming ``key_columns``.

    Raises:
        ConfigurationError: A given key is missing, or no single key can be guessed.
    """
    columns = list(columns)
    if key_columns:
        missing = [k for k in key_columns if k not in columns]
        if missing:
            raise ConfigurationError(
                f"The key column(s) {missing} are not in {where}; its columns are {columns}. "
                "Pass key_columns= the columns identifying one entity."
            )
        return list(key_columns)
    candidates = [c for c in columns if c.lower().endswith("_id")]
    if len(candidates) == 1:
        logger.info(
            "key_columns not given: using %r, the only column ending in '_id' in %s. "
            "Pass key_columns=[...] to choose.", candidates[0], where)
        return candidates
    found = f"the columns {candidates} end in '_id'" if candidates else "no column ends in '_id'"
    raise ConfigurationError(
        f"key_columns not given and {found} in {where} (columns: {columns}). Pass "
        "key_columns=[...] (or set key_columns in the model spec)."
    )


def require_columns(frame: pd.DataFrame, columns: dict[str, str | None], where: str) -> None:
    """Refuse a named column (``{parameter: column}``) that ``frame`` lacks."""
    for parameter, column in columns.items():
        if column is not None and column not in frame.columns:
            raise ConfigurationError(
                f"{parameter}={column!r} is not a column of {where}; its columns are "
                f"{list(frame.columns)}."
            )


def default_checks(task: str) -> list[dict[str, Any]]:
    """The evaluation checks a task gets unless ``checks=`` says otherwise.

    binary: ROC AUC (error below 0.6, warning below 0.75); multiclass: macro F1 (error
    below 0.5, warning below 0.7); regression: R² (error below 0, i.e. worse than
    predicting the mean; warning below 0.3).

    Examples:
        >>> [c["metric"] for c in default_checks("regression")]
        ['r2', 'r2']
    """
    metric, error, warning = {
        "binary": ("roc_auc", 0.6, 0.75),
        "multiclass": ("f1", 0.5, 0.7),
        "regression": ("r2", 0.0, 0.3),
    }[task]
    return [
        {"metric": metric, "lower": error, "severity": "error"},
        {"metric": metric, "lower": warning, "severity": "warning"},
    ]


DEFAULT_PROMOTION_METRIC: dict[str, str] = {
    "binary": "roc_auc", "multiclass": "f1", "regression": "rmse",
}


def evaluation_task(task: str) -> str:
    """The name ``evaluate`` and ``promote`` use for a task."""
    return "regression" if task == "regression" else "classification"
