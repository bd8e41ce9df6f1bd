"""Link Prefect runs and MLflow runs both ways, and score models the same way everywhere.

``tracked_run`` is the entry point: use it in any task or flow to log to MLflow under a
run that carries the Prefect run's identity and survives task retries.

Examples:
    >>> from knot_prefect.tracking import tracked_run
    >>> callable(tracked_run)
    True
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes, names_by_module

_EXPORTS = names_by_module({
    "knot_prefect.tracking.runs": ("tracked_run",),
    "knot_prefect.tracking.resolve": ("resolve_tracking",),
    "knot_prefect.tracking.prefect_context": ("PrefectRunInfo", "current_prefect_run"),
    "knot_prefect.tracking.scoring": ("score",),
})

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
