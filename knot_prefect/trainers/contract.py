"""The trainer contract: how ``training_flow`` and the ``train`` task call a trainer.

A trainer is a plain function::

    def my_trainer(data: pd.DataFrame, target: str, params: dict, task: str) -> Any:
        ...

- ``data``: the training rows: the model's input columns and the ``target`` column
  (entity keys and the event timestamp are removed).
- ``target``: the label column's name.
- ``params``: hyperparameters (``params=`` of the flow, or the spec's
  ``trainer_params``); knot logs them to the MLflow run.
- ``task`` (optional keyword): ``"binary"``, ``"multiclass"`` or ``"regression"``.

It runs inside an active MLflow run and returns a fitted scikit-learn estimator or
pipeline (knot logs it), the URI of a model it logged itself, or None (the model
autologging or the trainer logged in the run). Functions of the older form
``fn(data, params)`` (the label inside ``data``) are still called that way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

TaskName = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = get_args(TaskName)

BUILT_IN_TRAINERS: dict[str, str] = {
    "gradient_boosting": "knot_prefect.trainers.builtin:gradient_boosting",
    "xgboost": "knot_prefect.trainers.builtin:xgboost",
    "lightgbm": "knot_prefect.trainers.builtin:lightgbm",
}

# Most distinct integer labels still read as classes when the task is inferred.
MAX_INFERRED_CLASSES = 20


class TrainerContractError(ConfigurationError):
    """A trainer does not follow knot's trainer contract, or failed while training."""


def resolve_trainer(trainer: str | Callable[..., Any]) -> Callable[..., Any]:
    """A built-in trainer's name, an import path ``"pkg.module:function"`` or a function.

    Examples:
        >>> resolve_trainer("gradient_boosting").__name__
        'gradient_boosting'
    """
    from knot_prefect.import_paths import import_callable

    if callable(trainer):
        return trainer
    return import_callable(BUILT_IN_TRAINERS.get(trainer, trainer))


def call_trainer(
    fn: Callable[..., Any], data: Any, target: str | None, params: dict[str, Any],
    task: str | None = None,
) -> Any:
    """Call ``fn`` the way its signature asks: ``fn(data, target, params[, task=])``.

    Raises:
        TrainerContractError: The signature fits no form of the contract, or the
            trainer raised (the message names the trainer, how it was called and the
            columns it was given; the original error is chained).
    """
    name = getattr(fn, "__qualname__", repr(fn))
    legacy = _takes_legacy_form(fn)
    columns = list(getattr(data, "columns", []))
    if legacy:
        arguments: tuple[Any, ...] = (data, params)
        keywords: dict[str, Any] = {}
        called = "fn(data, params)"
    else:
        if target is None:
            raise TrainerContractError(
                f"Trainer {name} takes a target, but none was given: pass target= the "
                "label column."
            )
        arguments = (data, target, params)
        keywords = {"task": task} if task is not None and _accepts(fn, "task") else {}
        called = f"fn(data, {target!r}, params{', task=' + repr(task) if keywords else ''})"
    try:
        return fn(*arguments, **keywords)
    except TrainerContractError:
        raise
    except Exception as exc:
        raise TrainerContractError(
            f"Trainer {name} failed with {type(exc).__name__}: {exc}. knot called it as "
            f"{called}; data holds the columns {columns}. See docs/trainers.md for the "
            "contract."
        ) from exc


def infer_task(labels: pd.Series) -> TaskName:
    """The task a label column implies: text or few integer values are classes.

    Examples:
        >>> import pandas as pd
        >>> infer_task(pd.Series(["a", "b", "a"])), infer_task(pd.Series([1.5, 2.0, 0.1]))
        ('binary', 'regression')
    """
    import pandas as pd

    values = labels.dropna()
    distinct = values.nunique()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and (values.dtype.kind == "f" or distinct > MAX_INFERRED_CLASSES):
        return "regression"
    return "binary" if distinct <= 2 else "multiclass"


def check_task(task: str) -> TaskName:
    """Refuse a task name knot does not know, listing those it does."""
    if task == "classification":
        raise ConfigurationError(
            "task='classification' is ambiguous: pass task='binary' or task='multiclass'."
        )
    if task not in TASKS:
        raise ConfigurationError(f"task must be one of {list(TASKS)}, not {task!r}.")
    return task  # type: ignore[return-value]


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in parameters if p.kind in kinds]


def _takes_legacy_form(fn: Callable[..., Any]) -> bool:
    positional = _positional(fn)
    if positional is None:
        return False  # Builtins and callables without a signature: the current form.
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    names = [p.name for p in positional]
    if len(positional) >= 3 or "target" in names:
        return False
    if len(required) <= 2 and len(positional) == 2:
        return True
    raise TrainerContractError(
        f"Trainer {getattr(fn, '__qualname__', fn)} takes the positional parameters "
        f"{names}; a trainer is a function fn(data, target, params) (optionally with a "
        "task= keyword). See docs/trainers.md."
    )


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
