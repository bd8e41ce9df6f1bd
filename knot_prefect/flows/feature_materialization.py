"""Flow template: apply the Feast repo, materialize, then gate on freshness."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow

from knot_prefect.blocks.feast_store import FeastFeatureStore
from knot_prefect.tasks.features import ensure_fresh, feast_apply, materialize


@flow(name="feature-materialization")
def feature_materialization_flow(
    store: FeastFeatureStore | str,
    views: list[str] | None = None,
    max_age: timedelta | float | None = None,
    end: datetime | None = None,
    apply: bool = True,
) -> dict[str, Any]:
    """Keep the online store current: apply definitions, materialize, check freshness.

    Args:
        store: A ``FeastFeatureStore`` block or its document name.
        views: Feature views to materialize; every online view when ``None``.
        max_age: When set, fail the run if any of ``views`` is older than this
            after materializing (a ``timedelta`` or seconds).
        end: End of the materialization window; now when ``None``.
        apply: Apply the repo's definitions first (a no-op when unchanged).

    Returns:
        ``{"apply": ..., "materialized": [...], "ages": {...}}``.

    Examples:
        ```python
        from knot_prefect.flows import feature_materialization_flow

        feature_materialization_flow("churn-features", max_age=3600)
        ```
    """
    applied = feast_apply(store) if apply else None
    materialized = materialize(store, views=views, end=end)
    ages = ensure_fresh(store, views=views, max_age=max_age) if max_age is not None else None
    return {"apply": applied, "materialized": materialized, "ages": ages}
