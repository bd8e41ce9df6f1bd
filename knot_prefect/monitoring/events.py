"""The Prefect event a drifted monitoring run emits: ``knot.drift.detected``.

One event per monitoring run that found drift, about the monitored model
(``knot.mlflow.registered-model.<name>``, the resource of promotion events too) with
the labels ``knot.model.alias``, ``knot.model.version`` and ``knot.drift.severity``.
The payload names the most drifted column (``feature``, ``statistic``, ``value``) and
lists every drifted column, so that an automation counting drifted runs counts runs,
not columns.

Examples:
    >>> from knot_prefect.monitoring.drift import ColumnDrift
    >>> drift = [ColumnDrift("x1", 0.4, 0.3, 0.0, 100), ColumnDrift("x2", 0.12, 0.1, 0.2, 100)]
    >>> event = drift_event("churn", "champion", 3, drift, psi_warning=0.1, psi_error=0.25)
    >>> event["payload"]["feature"], event["payload"]["severity"]
    ('x1', 'error')
    >>> sorted(event["payload"]["features"])
    ['x1', 'x2']
    >>> drift_event("churn", "champion", 3, drift[1:], psi_warning=0.2, psi_error=0.3) is None
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from knot_prefect.tracking.aliases import model_resource_id

if TYPE_CHECKING:
    from knot_prefect.monitoring.drift import ColumnDrift

DRIFT_EVENT = "knot.drift.detected"
SEVERITY_LABEL = "knot.drift.severity"
DriftSeverity = Literal["warning", "error"]


def drift_severity(psi: float, psi_warning: float, psi_error: float) -> DriftSeverity | None:
    """``"error"`` above ``psi_error``, ``"warning"`` above ``psi_warning``, else None.

    Examples:
        >>> drift_severity(0.3, 0.1, 0.25), drift_severity(0.05, 0.1, 0.25)
        ('error', None)
    """
    if psi > psi_error:
        return "error"
    if psi > psi_warning:
        return "warning"
    return None


def drift_event(
    model: str,
    alias: str,
    version: int,
    drift: list[ColumnDrift],
    psi_warning: float,
    psi_error: float,
) -> dict[str, Any] | None:
    """The ``emit_event`` arguments of a monitoring run's drift, or None without drift.

    Args:
        model: Registered model name.
        alias: The monitored alias.
        version: The version the alias pointed at.
        drift: Drift per column.
        psi_warning: PSI above which a column has drifted (severity ``warning``).
        psi_error: PSI above which its severity is ``error``.

    Returns:
        ``{"event", "resource", "payload"}``; the run's severity is its worst column's.
    """
    drifted = {
        item.column: (item, severity)
        for item in drift
        if (severity := drift_severity(item.psi, psi_warning, psi_error)) is not None
    }
    if not drifted:
        return None
    worst, severity = max(drifted.values(), key=lambda pair: pair[0].psi)
    return {
        "event": DRIFT_EVENT,
        "resource": {
            "prefect.resource.id": model_resource_id(model),
            "prefect.resource.name": model,
            "knot.model.name": model,
            "knot.model.alias": alias,
            "knot.model.version": str(version),
            SEVERITY_LABEL: severity,
        },
        "payload": {
            "model": model,
            "alias": alias,
            "version": version,
            "feature": worst.column,
            "statistic": "psi",
            "value": worst.psi,
            "severity": severity,
            "thresholds": {"warning": psi_warning, "error": psi_error},
            "features": {
                column: {"psi": item.psi, "ks_statistic": item.ks_statistic,
                         "severity": level}
                for column, (item, level) in drifted.items()
            },
        },
    }


def emit_drift_event(event: dict[str, Any] | None) -> dict[str, Any] | None:
    """Emit :data:`DRIFT_EVENT` as :func:`drift_event` built it (nothing for None).

    Args:
        event: The arguments :func:`drift_event` returned.

    Returns:
        ``event``, emitted unless it is None or the run asks for no events.
    """
    from prefect.events import emit_event

    from knot_prefect.run_context import events_wanted

    if event is not None and events_wanted():
        emit_event(**event)
    return event


__all__ = ["DRIFT_EVENT", "SEVERITY_LABEL", "drift_event", "drift_severity", "emit_drift_event"]
