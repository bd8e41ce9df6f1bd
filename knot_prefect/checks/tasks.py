"""The ``check`` task: compare a metric with bounds and act on its severity."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.checks.result import CheckFailedError, CheckResult, Severity, evaluate
from knot_prefect.run_context import events_wanted, in_run, run_logger, slugify

WARNING_EVENT = "knot.check.warning"
FAILED_EVENT = "knot.check.failed"
PASSED_EVENT = "knot.check.passed"


def check_artifact_key(name: str) -> str:
    """The artifact key of a check: ``check-<name>``, one history per check name."""
    return f"check-{slugify(name)}"


def _log_to_mlflow(result: CheckResult, mlflow_run_id: str | None) -> bool:
    """Log the metric to MLflow when a run is active (or named); True when logged."""
    # mlflow is only consulted when already imported: without the module loaded no
    # run can be active, and importing it would cost a second for nothing.
    loaded = sys.modules.get("mlflow")
    if mlflow_run_id is None and (loaded is None or loaded.active_run() is None):
        return False
    import mlflow

    key = f"check.{result.name}"
    if mlflow_run_id is not None:
        mlflow.MlflowClient().log_metric(mlflow_run_id, key, result.value)
    else:
        mlflow.log_metric(key, result.value)
    return True


def publish_check(result: CheckResult) -> None:
    """Leave the check's keyed artifact, its event and its log line."""
    from prefect.artifacts import create_table_artifact
    from prefect.events import emit_event

    logger = run_logger()
    if result.passed:
        logger.info("Check passed: %s", result.message)
    elif result.severity == "warning":
        logger.warning("Check warning: %s", result.message)
    else:
        logger.error("Check failed: %s", result.message)
    if in_run():
        try:
            create_table_artifact(
                table=[result.to_dict()],
                key=check_artifact_key(result.name),
                description=f"{result.status}: {result.message}",
            )
        except Exception as exc:  # the check's outcome must not depend on the UI
            logger.warning("Could not create the artifact of check %r: %s", result.name, exc)
    if not events_wanted():
        return
    event = {"passed": PASSED_EVENT, "warning": WARNING_EVENT}.get(result.status, FAILED_EVENT)
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": f"knot.check.{slugify(result.name)}",
            "prefect.resource.name": result.name,
        },
        payload=result.to_dict(),
    )


def run_check(
    value: float | Callable[[], Any],
    name: str,
    lower: float | None = None,
    upper: float | None = None,
    equal: float | None = None,
    severity: Severity = "warning",
    tolerance: float = 0.0,
    mlflow_run_id: str | None = None,
) -> CheckResult:
    """Compare a metric with bounds; an ``error`` check stops the run, a ``warning`` not.

    Every check leaves a table artifact keyed ``check-<name>`` (its history across
    runs), emits ``knot.check.passed``, ``knot.check.warning`` or ``knot.check.failed``,
    and logs the value to MLflow as ``check.<name>`` when an MLflow run is active in
    this thread or ``mlflow_run_id`` names one. End the flow with
    :func:`knot_prefect.checks.completion.finish_with_warnings` so a failed warning
    check shows as "completed with warnings".

    Args:
        value: The metric, or a function without arguments that computes it.
        name: The check's name (artifact key, event resource and MLflow metric).
        lower: The smallest allowed value (inclusive).
        upper: The largest allowed value (inclusive).
        equal: The required value (within ``tolerance``).
        severity: ``"error"`` raises :class:`CheckFailedError` when the check fails;
            ``"warning"`` reports and lets the run go on.
        tolerance: Allowed absolute difference for ``equal``.
        mlflow_run_id: An MLflow run to log the metric to (the tracking URI must be
            configured); by default the active run, if any.

    Returns:
        The result.

    Raises:
        CheckFailedError: When an ``error`` check fails, after its artifact and event.
        ValueError: For bad arguments (no bound, unknown severity).

    Examples:
        >>> run_check(0.93, "accuracy", lower=0.9).passed
        True
    """
    computed = value() if callable(value) else value
    result = evaluate(computed, name, lower, upper, equal, severity, tolerance)
    publish_check(result)
    try:
        _log_to_mlflow(result, mlflow_run_id)
    except Exception as exc:  # tracking is a record, not a gate
        run_logger().warning("Could not log check %r to MLflow: %s", name, exc)
    if result.status == "failed":
        raise CheckFailedError(result)
    return result


check = task(name="check", cache_policy=NO_CACHE)(run_check)


