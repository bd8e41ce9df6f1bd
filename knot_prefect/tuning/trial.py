"""One trial of a search: a Prefect task that trains with one set of parameters under a
nested MLflow run, wherever the task runner puts it (a thread, a Dask worker process).

``train_fn(params)`` returns either a mapping of metric name -> number, a
``(metrics, model)`` pair, or a :class:`TrialOutput`. The model may be the URI of a
model ``train_fn`` logged itself (the trial's run is MLflow's active run while it
trains), a scikit-learn estimator or an ``mlflow.pyfunc.PythonModel`` (logged by the
trial as ``model``), or None.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import KnotError

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "knot.tuning.trial"
ERROR_TAG = "knot.tuning.error"
ROLE_TAG = "knot.tuning.role"


class TuningFailedError(KnotError):
    """Every trial of a search failed; the message lists the first errors."""


class TrialFailedError(KnotError):
    """A trial's training function raised or returned something unusable.

    Attributes:
        index: The trial's number in the search.
        run_id: Its MLflow run (ended ``FAILED``), when one was opened.
        error: ``"ExceptionType: message"`` of the underlying error.
    """

    def __init__(self, message: str, index: int = -1, run_id: str | None = None,
                 error: str = "") -> None:
        super().__init__(message)
        self.index, self.run_id, self.error = index, run_id, error


@dataclass
class TrialOutput:
    """What a training function may return for a trial.

    Attributes:
        metrics: Metric name -> value; must contain the search's metric.
        model: A model URI, a scikit-learn estimator, an ``mlflow.pyfunc.PythonModel``,
            or None.
    """

    metrics: Mapping[str, float]
    model: Any = None


@dataclass
class TrialRecord:
    """The outcome of one trial, as the flow ranks and reports it."""

    index: int
    params: dict[str, Any]
    status: str  # "FINISHED" or "FAILED"
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None
    error: str | None = None
    seconds: float | None = None


LOCK_RETRIES = 2  # extra attempts when only the store was busy


class RetryTrial:
    """A trial's retry condition: ``retries`` attempts for any failure, and up to
    ``LOCK_RETRIES`` more when SQLite answered "database is locked".

    MLflow's SQLite store already waits 20 s for a lock; past that, trying the trial
    again (its MLflow run is resumed, not duplicated) beats losing it. A module-level
    class so that Dask can pickle the task options by reference.

    Examples:
        >>> from prefect.states import Failed
        >>> class Run: run_count = 1
        >>> locked = Failed(data=RuntimeError("(sqlite3.OperationalError) database is locked"))
        >>> other = Failed(data=KeyError("x"))
        >>> RetryTrial(0)(None, Run(), locked), RetryTrial(0)(None, Run(), other)
        (True, False)
        >>> RetryTrial(1)(None, Run(), other)
        True
    """

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def __call__(self, task: Any, task_run: Any, state: Any) -> bool:
        if (task_run.run_count or 1) <= self.retries:
            return True
        try:
            error = state.result(raise_on_failure=False)
        except Exception as exc:  # The result may be unreadable: judge what was raised.
            error = exc
        text = f"{error} {getattr(error, 'error', '')}"
        return "database is locked" in text


def trial_run_name(index: int) -> str:
    """The MLflow run name and Prefect task-run name of trial ``index``.

    Examples:
        >>> trial_run_name(3)
        'trial-003'
    """
    return f"trial-{index:03d}"


def fit_trial(
    train_fn: Callable[[dict[str, Any]], Any],
    params: dict[str, Any],
    index: int,
    metric: str,
    tracking: MLflowTracking,
    parent_run_id: str,
) -> TrialRecord:
    """Train once with ``params`` under an MLflow run nested in ``parent_run_id``.

    The run gets the parameters, every returned metric, the model (when one is
    returned) and the tags ``mlflow.parentRunId`` and ``knot.tuning.trial``. A retried
    task resumes the same MLflow run.

    Args:
        train_fn: ``fn(params)`` returning metrics, ``(metrics, model)`` or a
            :class:`TrialOutput`.
        params: This trial's hyperparameters.
        index: The trial's number in the search.
        metric: The metric the search ranks by; it must be among the returned metrics.
        tracking: Where to log (a block with an explicit tracking URI: this may run in
            another process).
        parent_run_id: The search's MLflow run.

    Returns:
        The trial's record, status ``FINISHED``.

    Raises:
        TrialFailedError: ``train_fn`` raised, or returned no finite ``metric``; the
            MLflow run ends ``FAILED`` with the error in the ``knot.tuning.error`` tag
            and the traceback in ``error.txt``.
    """
    import mlflow

    from knot_prefect.tracking.runs import tracked_run

    started = time.perf_counter()
    tags = {PARENT_TAG: parent_run_id, TRIAL_TAG: str(index), ROLE_TAG: "trial"}
    with tracked_run(tracking, run_name=trial_run_name(index), tags=tags) as run:
        run_id = run.info.run_id
        mlflow.log_params(_loggable(params))
        try:
            metrics, model = _unpack(train_fn(dict(params)), metric)
            model_uri = _log_model(model)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            mlflow.set_tag(ERROR_TAG, error[:4000])
            mlflow.log_text(traceback.format_exc(), "error.txt")
            raise TrialFailedError(
                f"Trial {index} with {params} failed: {error}", index, run_id, error
            ) from exc
        mlflow.log_metrics(metrics)
    return TrialRecord(
        index=index,
        params=dict(params),
        status="FINISHED",
        run_id=run_id,
        metrics=metrics,
        model_uri=model_uri,
        seconds=round(time.perf_counter() - started, 3),
    )


run_trial = task(
    name="tuning-trial", task_run_name="trial-{index:03d}", cache_policy=NO_CACHE
)(fit_trial)


def _unpack(output: Any, metric: str) -> tuple[dict[str, float], Any]:
    """Split what ``train_fn`` returned into finite float metrics and a model."""
    model = None
    if isinstance(output, TrialOutput):
        metrics, model = output.metrics, output.model
    elif isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], Mapping):
        metrics, model = output
    elif isinstance(output, Mapping):
        metrics = output
    else:
        raise TypeError(
            f"train_fn returned a {type(output).__name__}; return a dict of metrics, a "
            "(metrics, model) pair or a TrialOutput."
        )
    values: dict[str, float] = {}
    for name, value in metrics.items():
        try:
            values[str(name)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {name!r} is {value!r}, not a number") from None
    if metric not in values:
        raise KeyError(
            f"train_fn returned no metric {metric!r}; it returned {sorted(values)}"
        )
    if not math.isfinite(values[metric]):
        raise ValueError(f"metric {metric!r} is {values[metric]}, not a finite number")
    return values, model


def _log_model(model: Any) -> str | None:
    """Log ``model`` to the active run (unless it is already a URI); return its URI."""
    import mlflow

    if model is None:
        return None
    if isinstance(model, str):
        return model
    if type(model).__module__.startswith("sklearn"):
        from knot_prefect.tracking.skops import skops_trusted_types

        info = mlflow.sklearn.log_model(
            model,
            name="model",
            # Known requirements instead of inferring them in a subprocess (seconds).
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            # Built by the team's own function in this trial: its types are trusted.
            skops_trusted_types=skops_trusted_types(model),
        )
        return str(info.model_uri)
    if isinstance(model, mlflow.pyfunc.PythonModel):
        info = mlflow.pyfunc.log_model(name="model", python_model=model)
        return str(info.model_uri)
    raise TypeError(
        f"train_fn returned a model of type {type(model).__name__}, which the trial cannot "
        "log: log it yourself inside train_fn (e.g. mlflow.<flavor>.log_model) and return "
        "its model URI, or return a scikit-learn estimator or an mlflow.pyfunc.PythonModel."
    )


def _loggable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as MLflow accepts them (values at most 6000 characters)."""
    return {name: str(value)[:6000] for name, value in params.items()}
