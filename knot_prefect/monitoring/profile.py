"""Reference profiles: a compact summary of the data a model was trained on.

A profile keeps, per numeric column, the quantile bin edges and the share of rows in
each bin, plus a bounded sample for the Kolmogorov-Smirnov test. It is plain JSON, so
it is stored next to the model version in MLflow and read back by the monitoring flow.

Examples:
    >>> import pandas as pd
    >>> profile = build_profile(pd.DataFrame({"x": range(100)}), bins=4, sample_rows=10)
    >>> profile["columns"]["x"]["fractions"]
    [0.25, 0.25, 0.25, 0.25]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PROFILE_VERSION = 1


def build_profile(
    frame: pd.DataFrame, bins: int = 10, sample_rows: int = 5_000, seed: int = 0
) -> dict[str, Any]:
    """Summarise the numeric columns of ``frame``.

    Args:
        frame: The reference data (training features, or predictions).
        bins: Quantile bins per column, used by the population stability index.
        sample_rows: Rows kept per column for the Kolmogorov-Smirnov test.
        seed: Seed of the sample.

    Returns:
        A JSON-serialisable profile.
    """
    import numpy as np

    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype.kind not in "biuf":
            continue
        values = series.dropna().to_numpy(dtype="float64")
        if values.size == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
        counts = bin_counts(values, edges)
        rng = np.random.default_rng(seed)
        sample = values if values.size <= sample_rows else rng.choice(values, sample_rows,
                                                                     replace=False)
        columns[str(name)] = {
            "edges": [float(e) for e in edges],
            "fractions": [round(float(c) / values.size, 6) for c in counts],
            "null_fraction": float(series.isna().mean()),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "sample": [float(v) for v in sample],
        }
    return {"version": PROFILE_VERSION, "rows": len(frame), "columns": columns}


def bin_counts(values: Any, edges: Any) -> Any:
    """Counts per bin; values outside the reference range fall in the outer bins."""
    import numpy as np

    if len(edges) < 2:
        return np.array([values.size])
    inner = edges[1:-1]
    index = np.searchsorted(inner, values, side="right")
    return np.bincount(index, minlength=len(edges) - 1)
