"""Drift of current data against a reference profile: PSI and KS per column.

Examples:
    >>> import pandas as pd
    >>> from knot_prefect.monitoring.profile import build_profile
    >>> reference = build_profile(pd.DataFrame({"x": range(1000)}))
    >>> same = column_drift(reference, pd.DataFrame({"x": range(1000)}))
    >>> same[0].psi < 0.01 and same[0].ks_pvalue > 0.5
    True
    >>> shifted = column_drift(reference, pd.DataFrame({"x": range(500, 1500)}))
    >>> shifted[0].psi > 0.25
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knot_prefect.monitoring.profile import bin_counts

if TYPE_CHECKING:
    import pandas as pd

# A floor for empty bins, so that PSI stays finite (a common convention).
_EPSILON = 1e-4


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column.

    Attributes:
        column: Column name.
        psi: Population stability index over the reference's quantile bins
            (< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant, by convention).
        ks_statistic: Two-sample Kolmogorov-Smirnov statistic against the reference sample.
        ks_pvalue: Its p-value.
        current_rows: Non-null rows of the column in the current data.
    """

    column: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    current_rows: int


def population_stability_index(expected: Any, actual: Any) -> float:
    """PSI between two distributions over the same bins (fractions summing to 1)."""
    import numpy as np

    expected = np.clip(np.asarray(expected, dtype="float64"), _EPSILON, None)
    actual = np.clip(np.asarray(actual, dtype="float64"), _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def column_drift(profile: dict[str, Any], current: pd.DataFrame) -> list[ColumnDrift]:
    """Compare every profiled column present in ``current`` with the profile.

    Args:
        profile: A profile from :func:`knot_prefect.monitoring.profile.build_profile`.
        current: The data to check.

    Returns:
        One result per profiled column found in ``current``.

    Raises:
        ValueError: When ``current`` has none of the profiled columns (names them).
    """
    import numpy as np
    from scipy.stats import ks_2samp

    profiled = profile["columns"]
    shared = [name for name in profiled if name in current.columns]
    if not shared:
        raise ValueError(
            f"None of the profiled columns {sorted(profiled)} is in the data to check "
            f"(its columns: {sorted(map(str, current.columns))})."
        )
    results = []
    for name in shared:
        reference = profiled[name]
        values = current[name].dropna().to_numpy(dtype="float64")
        if values.size == 0:
            results.append(ColumnDrift(name, float("inf"), 1.0, 0.0, 0))
            continue
        edges = np.asarray(reference["edges"])
        actual = bin_counts(values, edges) / values.size
        psi = population_stability_index(reference["fractions"], actual)
        ks = ks_2samp(np.asarray(reference["sample"]), values)
        results.append(
            ColumnDrift(name, round(psi, 6), float(ks.statistic), float(ks.pvalue), values.size)
        )
    return results
