"""Where the code runs: inside a Prefect flow or task run, or not.

Tasks and helpers report through these so the same code logs to the run when there is
one and stays quiet (and fast) in a notebook or a plain script.

Examples:
    >>> in_run()
    False
    >>> slugify("Orders_v2 (EU)")
    'orders-v2-eu'
"""

from __future__ import annotations

import contextlib
import logging
import re

# Statuses an artifact row can carry that make a run "completed with warnings".
WARNING_STATUSES = frozenset({"warning", "quarantined"})


def slugify(name: str, fallback: str = "unnamed") -> str:
    """Lowercase letters, digits and dashes, as Prefect artifact keys require.

    Examples:
        >>> slugify("Orders_v2 (EU)")
        'orders-v2-eu'
        >>> slugify("***")
        'unnamed'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:100] or fallback


def run_logger(
    fallback: str = "knot_prefect",
) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger inside a flow or task run, else the logger named ``fallback``."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(fallback)


def log_in_run(message: str) -> None:
    """Log ``message`` at info level to the current run's log; outside a run, do nothing."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


def current_flow_run_id() -> str | None:
    """The id of the flow run this code runs in, if any."""
    from prefect.context import FlowRunContext, TaskRunContext

    flow_context = FlowRunContext.get()
    if flow_context is not None and flow_context.flow_run is not None:
        return str(flow_context.flow_run.id)
    task_context = TaskRunContext.get()
    if task_context is not None and task_context.task_run.flow_run_id is not None:
        return str(task_context.task_run.flow_run_id)
    return None


def in_run() -> bool:
    """Whether this code runs inside a Prefect flow or task run (artifacts need one)."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def events_wanted() -> bool:
    """Whether to emit events: inside a run, or when a Prefect API is configured.

    Outside a run without ``PREFECT_API_URL``, emitting would start Prefect's
    ephemeral server just to record the event; a notebook call should stay fast.
    """
    from prefect.settings import get_current_settings

    return in_run() or bool(get_current_settings().api.url)
