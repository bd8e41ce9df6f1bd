"""Rolling back a new champion that fails its checks inside its watch window.

The window's rules (when a version was promoted, whether a time is inside the window)
are :mod:`knot_prefect.monitoring.watch`; this module applies them to a monitoring run's
failures through :func:`~knot_prefect.tasks.mlflow_registry.rollback_alias`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from knot_prefect.monitoring.watch import in_window, promoted_at, rollback_reason
from knot_prefect.run_context import log_in_run
from knot_prefect.tasks.mlflow_registry import AliasMove, rollback_alias

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking


def roll_back_if_watched(
    tracking: MLflowTracking,
    name: str,
    alias: str,
    version: int,
    failed: list[str],
    window: timedelta,
) -> AliasMove | None:
    """Roll ``alias`` back when ``version`` failed checks inside its watch window.

    Args:
        tracking: The registry's ``MLflowTracking`` block.
        name: Registered model name.
        alias: The watched alias.
        version: The version the failing run monitored.
        failed: Names of the error-severity checks that failed; empty moves nothing.
        window: How long after a promotion its checks can roll it back.

    Returns:
        The rollback, or None when nothing moved (no failure, the alias has moved on,
        no promotion recorded, or the window has passed).
    """
    from knot_prefect.tracking.aliases import alias_holder

    if not failed:
        return None
    client = tracking.get_client()
    if alias_holder(client, name, alias) != version:
        log_in_run(f"{name}@{alias} no longer holds v{version}; no rollback")
        return None
    promoted = promoted_at(client, name, alias, version)
    if promoted is None or not in_window(promoted, window):
        log_in_run(f"{name} v{version} is outside its {window} watch window "
                   f"(promoted: {promoted or 'not by promote'}); no rollback")
        return None
    return rollback_alias(name, alias, tracking,
                          reason=rollback_reason(name, version, failed, window))


__all__ = ["roll_back_if_watched"]
