"""Hyperparameter search for ``tuning_flow``: search spaces, trials, ranking.

Examples:
    >>> from knot_prefect.tuning import plan_trials
    >>> plan_trials({"alpha": [0.1, 1.0]}, None, "grid", seed=0)
    [{'alpha': 0.1}, {'alpha': 1.0}]
"""

from __future__ import annotations

from knot_prefect._lazy import lazy_module_attributes, names_by_module

_EXPORTS = names_by_module({
    "knot_prefect.tuning.space": (
        "Uniform", "LogUniform", "IntRange", "Choice", "SearchSpaceError",
        "parse_search_space", "plan_trials",
    ),
    "knot_prefect.tuning.trial": (
        "TrialOutput", "TrialRecord", "TrialFailedError", "run_trial", "fit_trial",
        "TuningFailedError",
    ),
})

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_module_attributes(__name__, _EXPORTS, globals())
