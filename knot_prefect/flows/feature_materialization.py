"""Flow template: apply the Feast repo, materialize, then gate on freshness."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow

from knot_prefect.blocks.feast_store import FeastFeatureStore
from knot_prefect.tasks.features import ensure_fresh, feast_apply, materialize


@flow(name="feature-materialization")
def feature_materialization_flow(
    store: FeastFeatureStore | str | None = None,
    views: list[str] | None = None,
    max_age: timedelta | float | None = None,
    end: datetime | None = None,
    apply: bool = True,
    spec: str | None = None,
) -> dict[str, Any]:
    """Keep the online store current: apply definitions, materialize, check freshness.

    Args:
        store: A ``FeastFeatureStore`` block or its document name (required; the
            spec's ``feature_store``).
        views: Feature views to materialize; every online view when ``None``.
        max_age: When set, fail the run if any of ``views`` is older than this
            after materializing (a ``timedelta`` or seconds).
        end: End of the materialization window; now when ``None``.
        apply: Apply the repo's definitions first (a no-op when unchanged).
        spec: ModelSpec block document name, or the path of a model spec YAML file.

    Returns:
        ``{"apply": ..., "materialized": [...], "ages": {...}}``.

    Examples:
        ```python
        from knot_prefect.flows import feature_materialization_flow

        feature_materialization_flow("prod-features", max_age=3600)
        ```
    """
    from knot_prefect.flows._parameters import settle

    resolved = store if store is not None else settle(
        "feature_materialization_flow", spec).required(
            None, "store", "feature_store", "the FeastFeatureStore block document")
    applied = feast_apply(resolved) if apply else None
    materialized = materialize(resolved, views=views, end=end)
    ages = (ensure_fresh(resolved, views=views, max_age=max_age) if max_age is not None
            else None)
    return {"apply": applied, "materialized": materialized, "ages": ages}
