"""Link Prefect runs and MLflow runs both ways, and score models the same way everywhere.

``tracked_run`` is the entry point: use it in any task or flow to log to MLflow under a
run that carries the Prefect run's identity and survives task retries.

Examples:
    >>> from knot_prefect.tracking import tracked_run
    >>> callable(tracked_run)
    True
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes

_EXPORTS: dict[str, str] = {
    "tracked_run": "knot_prefect.tracking.runs",
    "resolve_tracking": "knot_prefect.tracking.resolve",
    "PrefectRunInfo": "knot_prefect.tracking.prefect_context",
    "current_prefect_run": "knot_prefect.tracking.prefect_context",
    "score": "knot_prefect.tracking.scoring",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
