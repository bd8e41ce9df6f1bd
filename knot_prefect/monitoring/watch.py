"""The watch window after a promotion: a new champion that fails its checks is rolled back.

``promote`` records when it moved an alias (the version tag
``knot.promotion.<alias>.decided_at``, with the decision ``promoted``). A monitoring run
given ``rollback_within`` (e.g. ``"2h"``) whose error-severity checks fail while the
monitored version is still inside that window after its promotion moves the alias back
through :func:`~knot_prefect.tasks.mlflow_registry.rollback_alias`, which emits
``knot.model.rolled-back`` and publishes the ``model-rollback`` artifact, both carrying
the reason. Outside the window (or for a version set by hand) nothing moves: the run
only fails. :func:`~knot_prefect.tasks.promotion_watch.roll_back_if_watched` applies
these rules to a monitoring run's failures.

Examples:
    >>> from datetime import UTC, datetime, timedelta
    >>> promoted = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> in_window(promoted, timedelta(hours=2), now=promoted + timedelta(minutes=30))
    True
    >>> in_window(promoted, timedelta(hours=2), now=promoted + timedelta(hours=3))
    False
    >>> rollback_reason("churn", 4, ["drift-churn-x1-error"], timedelta(hours=2))
    'churn v4 failed drift-churn-x1-error within 2:00:00 of its promotion'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def promoted_at(client: MlflowClient, name: str, alias: str, version: int) -> datetime | None:
    """When ``promote`` gave ``alias`` to ``version``, or None (never promoted by knot).

    Args:
        client: An MLflow client on the registry.
        name: Registered model name.
        alias: The alias.
        version: The version holding it.

    Returns:
        The decision's time (UTC), read from the version's promotion tags.
    """
    tags = client.get_model_version(name, str(version)).tags
    prefix = f"knot.promotion.{alias}."
    if tags.get(prefix + "decision") != "promoted" or not tags.get(prefix + "decided_at"):
        return None
    decided = datetime.fromisoformat(tags[prefix + "decided_at"])
    return decided if decided.tzinfo else decided.replace(tzinfo=UTC)


def in_window(promoted: datetime, window: timedelta, now: datetime | None = None) -> bool:
    """Whether ``now`` is within ``window`` after ``promoted``."""
    return (now or datetime.now(UTC)) - promoted <= window


def rollback_reason(name: str, version: int, failed: list[str], window: timedelta) -> str:
    """The reason a watch gives for its rollback."""
    return f"{name} v{version} failed {', '.join(failed)} within {window} of its promotion"


__all__ = ["in_window", "promoted_at", "rollback_reason"]
