"""How long ago each feature view was last materialized, and the freshness gate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from knot_prefect.features.errors import FeatureReferenceError, StaleFeaturesError

if TYPE_CHECKING:
    from feast import FeatureStore


def materialization_ages(
    store: FeatureStore, views: Sequence[str] | None = None, now: datetime | None = None
) -> dict[str, float | None]:
    """Seconds since the end of each view's latest materialization window.

    Args:
        store: The open store (the registry is read afresh).
        views: View names; every view with ``online=True`` when ``None``.
        now: The reference time; the current UTC time when ``None``.

    Returns:
        View name -> age in seconds, ``None`` for a view never materialized.

    Raises:
        FeatureReferenceError: For unknown view names, listing the closest ones.
    """
    from knot_prefect.features.materialization import select_views, utc

    now = utc(now or datetime.now(UTC))
    ages: dict[str, float | None] = {}
    for view in select_views(store, views):
        end = view.most_recent_end_time
        ages[view.name] = None if end is None else (now - utc(end)).total_seconds()
    return ages


def format_age(seconds: float | None) -> str:
    """A short human form of an age.

    Examples:
        >>> format_age(93784.0)
        '1d 2h 3m'
        >>> format_age(None)
        'never materialized'
    """
    if seconds is None:
        return "never materialized"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes or not parts:
        parts.append(f"{minutes}m" if minutes else f"{secs}s")
    return " ".join(parts)


def check_fresh(ages: dict[str, float | None], max_age: timedelta) -> dict[str, float | None]:
    """Raise when any view is older than ``max_age``.

    Returns:
        The ages, when all are fresh.

    Raises:
        StaleFeaturesError: Naming each stale view and its age.
    """
    limit = max_age.total_seconds()
    stale = {name: age for name, age in ages.items() if age is None or age > limit}
    if stale:
        details = ", ".join(f"{name} ({format_age(age)})" for name, age in stale.items())
        raise StaleFeaturesError(
            f"{len(stale)} feature view(s) older than the allowed {format_age(limit)}: "
            f"{details}. Run materialize (or feature_materialization_flow) for them.",
            stale,
        )
    if not ages:
        raise FeatureReferenceError("No feature views to check: the registry holds none.")
    return ages
