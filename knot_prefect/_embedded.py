"""Prefect settings of knot's embedded mode, applied when ``knot_prefect`` is imported.

Without ``PREFECT_API_URL`` Prefect starts a temporary server in the process. This module
imports nothing heavy: ``import knot_prefect`` stays as cheap as it was.
"""

from __future__ import annotations

import os
import sys

# Prefect settings knot gives its embedded mode (no PREFECT_API_URL: Prefect starts a
# temporary server in the process). A value the user set is never replaced.
EMBEDDED_PREFECT_DEFAULTS: dict[str, str] = {
    # The first start migrates a new SQLite database, which outlasts Prefect's default
    # wait (20 s) on a busy two-core machine; scripts and the knot CLI wait the same.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # The temporary server's telemetry heartbeat writes to the same SQLite file while a
    # flow does, and prints a "database is locked" traceback when it loses the race.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def apply_embedded_prefect_defaults() -> list[str]:
    """Give Prefect knot's embedded-mode defaults where the environment sets none.

    Called when ``knot_prefect`` is imported, so a recipe's ``python pipeline.py`` and
    the ``knot`` CLI start Prefect's temporary server the same way. When Prefect was
    imported first, its global settings are re-read so the defaults still apply.

    Returns:
        The names of the variables this call set (empty when all were set already).

    Examples:
        >>> import os
        >>> import knot_prefect  # importing knot applies them
        >>> apply_embedded_prefect_defaults()
        []
        >>> os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] in ("false", "true", "0", "1")
        True
    """
    applied = [name for name in EMBEDDED_PREFECT_DEFAULTS if name not in os.environ]
    for name in applied:
        os.environ[name] = EMBEDDED_PREFECT_DEFAULTS[name]
    context = sys.modules.get("prefect.context")
    if applied and context is not None and hasattr(context, "refresh_global_settings_context"):
        context.refresh_global_settings_context()
    return applied
