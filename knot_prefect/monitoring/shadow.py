"""The shadow comparison: how a shadowed model's answers compare with the served one's.

``knot serve --shadow challenger`` appends both answers per entity to a table (see
:mod:`knot_prefect.serving.shadow`). :func:`compare_shadow` summarises them: how often
the two agree, the PSI between their score distributions and both latencies; the
``shadow_comparison`` task reads the table, publishes the summary as a Prefect artifact
and MLflow metrics, and returns it for ``promote(..., shadow=...)``.

Examples:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "model_name": "churn", "primary_version": 3, "shadow_version": 4,
    ...     "agree": [True, True, True, False],
    ...     "primary_probability": [0.1, 0.4, 0.7, 0.9],
    ...     "shadow_probability": [0.1, 0.4, 0.7, 0.2],
    ...     "primary_latency_ms": [1.0, 2.0, 3.0, 4.0],
    ...     "shadow_latency_ms": [2.0, 2.0, 2.0, 2.0]})
    >>> comparison = compare_shadow(rows)
    >>> comparison.requests, comparison.agreement, comparison.disagreement
    (4, 0.75, 0.25)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import ConfigurationError
from knot_prefect.monitoring.drift import population_stability_index

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.base import Warehouse

_BINS = 10


@dataclass(frozen=True)
class ShadowComparison:
    """Evidence from shadow scoring.

    Attributes:
        model: Registered model name.
        primary_version: The version that answered.
        shadow_version: The version that scored in the shadow.
        requests: Entities scored by both.
        agreement: Fraction of them with the same prediction.
        score_psi: PSI between the two score distributions (probabilities when both
            models give one, else numeric predictions; None when neither).
        primary_p50_ms: Median time of the served model's scoring.
        primary_p99_ms: Its 99th percentile.
        shadow_p50_ms: Median time of the shadow model's scoring.
        shadow_p99_ms: Its 99th percentile.
    """

    model: str
    primary_version: int
    shadow_version: int
    requests: int
    agreement: float
    score_psi: float | None
    primary_p50_ms: float
    primary_p99_ms: float
    shadow_p50_ms: float
    shadow_p99_ms: float

    @property
    def disagreement(self) -> float:
        """``1 - agreement``."""
        return round(1.0 - self.agreement, 12)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "disagreement": self.disagreement}

    def refusal(self, version: int, min_requests: int | None,
                max_disagreement: float | None) -> str | None:
        """Why this evidence does not allow promoting ``version``, or None.

        Examples:
            >>> evidence = ShadowComparison("churn", 3, 4, 120, 0.99, 0.01, 1, 2, 1, 2)
            >>> print(evidence.refusal(4, 500, None))  # doctest: +ELLIPSIS
            the shadow of churn v4 scored 120 requests, fewer than the 500 required; ...
            >>> evidence.refusal(4, min_requests=100, max_disagreement=0.05) is None
            True
        """
        if version != self.shadow_version:
            return (f"the shadow evidence is about {self.model} v{self.shadow_version}, not "
                    f"v{version}; shadow v{version} (knot serve --shadow) and compare again")
        if min_requests is not None and self.requests < min_requests:
            return (f"the shadow of {self.model} v{version} scored {self.requests} requests, "
                    f"fewer than the {min_requests} required; keep it in the shadow longer")
        if max_disagreement is not None and self.disagreement > max_disagreement:
            return (f"{self.model} v{version} disagreed with the served v"
                    f"{self.primary_version} on {self.disagreement:.1%} of {self.requests} "
                    f"shadowed requests, more than the {max_disagreement:.1%} allowed")
        return None


def _score_psi(frame: pd.DataFrame) -> float | None:
    import numpy as np
    import pandas as pd

    for primary, shadow in (("primary_probability", "shadow_probability"),
                            ("primary_prediction", "shadow_prediction")):
        if primary not in frame or shadow not in frame:
            continue
        mine = pd.to_numeric(frame[primary], errors="coerce").dropna().to_numpy(float)
        theirs = pd.to_numeric(frame[shadow], errors="coerce").dropna().to_numpy(float)
        if mine.size and theirs.size:
            edges = np.unique(np.quantile(mine, np.linspace(0, 1, _BINS + 1)))
            edges[0], edges[-1] = -np.inf, np.inf
            expected = np.histogram(mine, edges)[0] / mine.size
            actual = np.histogram(theirs, edges)[0] / theirs.size
            return round(population_stability_index(expected, actual), 6)
    return None


def compare_shadow(frame: pd.DataFrame) -> ShadowComparison:
    """Summarise shadow rows of one model, one served version and one shadow version.

    Raises:
        ConfigurationError: No rows, or rows of several versions (names them).
    """
    if frame.empty:
        raise ConfigurationError(
            "No shadow scores to compare: serve with `knot serve --shadow ALIAS` and send "
            "requests first."
        )
    pairs = frame[["primary_version", "shadow_version"]].drop_duplicates()
    if len(pairs) > 1 or frame["model_name"].nunique() > 1:
        raise ConfigurationError(
            f"The shadow rows mix versions {pairs.to_dict('records')}: compare one served "
            "and one shadow version (filter by shadow_version)."
        )

    def quantile(column: str, q: float) -> float:
        return round(float(frame[column].astype(float).quantile(q)), 3)

    return ShadowComparison(
        model=str(frame["model_name"].iloc[0]),
        primary_version=int(pairs["primary_version"].iloc[0]),
        shadow_version=int(pairs["shadow_version"].iloc[0]),
        requests=len(frame),
        agreement=round(float(frame["agree"].astype(bool).mean()), 6),
        score_psi=_score_psi(frame),
        primary_p50_ms=quantile("primary_latency_ms", 0.5),
        primary_p99_ms=quantile("primary_latency_ms", 0.99),
        shadow_p50_ms=quantile("shadow_latency_ms", 0.5),
        shadow_p99_ms=quantile("shadow_latency_ms", 0.99),
    )


def compare_shadow_table(
    warehouse: Warehouse | str,
    model_name: str,
    shadow_version: int,
    table: str = "shadow_scores",
    tracking: MLflowTracking | str | None = None,
) -> ShadowComparison:
    """Compare the shadow rows of ``model_name`` v``shadow_version`` in ``table``.

    Publishes the comparison as a Prefect table artifact (``shadow-<model>``) inside a
    run and, with ``tracking``, as MLflow metrics (``shadow_agreement``,
    ``shadow_score_psi``, latencies) of a run tagged with the model.

    Returns:
        The comparison, for ``promote(..., shadow=...)``.
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.run_context import in_run, slugify

    block = resolve_block(warehouse, Warehouse, parameter="warehouse")
    # The last served version the shadow was compared with: one pair at a time.
    frame = block.read(
        f"select * from {TableName.parse(table).quoted()} "
        "where model_name = :model and shadow_version = :version",
        {"model": model_name, "version": int(shadow_version)},
    )
    if not frame.empty:
        latest = frame["primary_version"].astype(int).max()
        frame = frame[frame["primary_version"].astype(int) == latest]
    comparison = compare_shadow(frame)
    if in_run():
        from prefect.artifacts import create_table_artifact

        create_table_artifact(
            table=[comparison.to_dict()], key=f"shadow-{slugify(model_name)}",
            description=(f"{model_name} v{comparison.shadow_version} in the shadow of "
                         f"v{comparison.primary_version}: {comparison.agreement:.1%} "
                         f"agreement over {comparison.requests} requests."),
        )
    if tracking is not None:
        import mlflow

        from knot_prefect.tracking.runs import tracked_run

        metrics = {f"shadow_{name}": float(value) for name, value in comparison.to_dict().items()
                   if name not in ("model", "primary_version", "shadow_version")
                   and value is not None}
        with tracked_run(tracking, run_name="shadow-comparison",
                         tags={"knot.model": f"{model_name}/{comparison.shadow_version}"}):
            mlflow.log_metrics(metrics)
    return comparison


shadow_comparison = task(name="shadow-comparison", cache_policy=NO_CACHE)(compare_shadow_table)

__all__ = ["ShadowComparison", "compare_shadow", "compare_shadow_table", "shadow_comparison"]
