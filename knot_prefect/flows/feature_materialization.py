"""Flow template: apply the Feast repo, materialize, then gate on freshness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from knot_prefect.blocks.feast_store import FeastFeatureStore
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows.feature_materialization_partitions import backfill, partitions
from knot_prefect.tasks.features import ensure_fresh, feast_apply, materialize


@flow(name="feature-materialization")
def feature_materialization_flow(
    store: FeastFeatureStore | str | None = None,
    views: list[str] | None = None,
    max_age: timedelta | float | None = None,
    end: datetime | None = None,
    apply: bool = True,
    spec: str | None = None,
    start: datetime | None = None,
    partition: str | timedelta | None = None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Keep the online store current: apply definitions, materialize, check freshness.

    With ``start`` and ``partition`` (e.g. ``"1d"``) it backfills ``[start, end)`` by
    partition: each partition is a task run of its own, a failing partition fails only
    itself (the run fails naming it once the others are done), and a re-run skips the
    partitions already done (see :mod:`knot_prefect.flows.partitions`).

    Args:
        store: A ``FeastFeatureStore`` block or its document name (required; the
            spec's ``feature_store``).
        views: Feature views to materialize; every online view when ``None``.
        max_age: When set, fail the run if any of ``views`` is older than this
            after materializing (a ``timedelta`` or seconds).
        end: End of the materialization window; now when ``None``.
        apply: Apply the repo's definitions first (a no-op when unchanged).
        spec: ModelSpec block document name, or the path of a model spec YAML file.
        start: Start of a backfill window (with ``partition``).
        partition: Partition size of a backfill, e.g. ``"1d"``.
        refresh: In a backfill, materialize the partitions already done again too.

    Returns:
        ``{"apply": ..., "materialized": [...], "ages": {...}}``; a backfill adds
        ``"partitions"``, one dict per partition (its ``status`` and ``rows``).

    Examples:
        ```python
        from knot_prefect.flows import feature_materialization_flow

        feature_materialization_flow("prod-features", max_age=3600)
        ```
    """
    from knot_prefect.flows._parameters import settle

    if (start is None) != (partition is None):
        raise ConfigurationError(
            "A backfill needs both start= and partition= (e.g. start=2026-01-01, "
            "partition='1d'); give neither for an incremental materialization.")
    resolved = store if store is not None else settle(
        "feature_materialization_flow", spec).required(
            None, "store", "feature_store", "the FeastFeatureStore block document")
    if start is not None:
        partitions(start, end or datetime.now(UTC), partition or "")  # bad input first
    applied = feast_apply(resolved) if apply else None
    report: dict[str, Any] = {"apply": applied}
    if start is not None and partition is not None:
        done = backfill(resolved, views, start, end or datetime.now(UTC), partition, refresh)
        report["partitions"] = done
        report["materialized"] = [
            {"view": view, "rows": sum(p["rows"].get(view, 0) for p in done)}
            for view in dict.fromkeys(v for p in done for v in p["rows"])]
    else:
        report["materialized"] = materialize(resolved, views=views, end=end)
    report["ages"] = (ensure_fresh(resolved, views=views, max_age=max_age)
                      if max_age is not None else None)
    return report
