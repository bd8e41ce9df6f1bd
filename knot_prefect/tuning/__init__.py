"""Hyperparameter search for ``tuning_flow``: search spaces, trials, ranking.

Examples:
    >>> from knot_prefect.tuning import plan_trials
    >>> plan_trials({"alpha": [0.1, 1.0]}, None, "grid", seed=0)
    [{'alpha': 0.1}, {'alpha': 1.0}]
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes

_EXPORTS: dict[str, str] = {
    "Uniform": "knot_prefect.tuning.space",
    "LogUniform": "knot_prefect.tuning.space",
    "IntRange": "knot_prefect.tuning.space",
    "Choice": "knot_prefect.tuning.space",
    "SearchSpaceError": "knot_prefect.tuning.space",
    "parse_search_space": "knot_prefect.tuning.space",
    "plan_trials": "knot_prefect.tuning.space",
    "TrialOutput": "knot_prefect.tuning.trial",
    "TrialRecord": "knot_prefect.tuning.trial",
    "TrialFailedError": "knot_prefect.tuning.trial",
    "run_trial": "knot_prefect.tuning.trial",
    "fit_trial": "knot_prefect.tuning.trial",
    "TuningFailedError": "knot_prefect.tuning.trial",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
