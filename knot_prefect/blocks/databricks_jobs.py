"""Calls to the Databricks Jobs API through prefect-databricks, as plain calls.

prefect-databricks wraps each Jobs endpoint in a Prefect task. A scoring run polls its
Databricks run many times, so knot calls the functions beneath those tasks: the scoring
is one task run of its own, not one task run per poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_databricks import DatabricksCredentials


def submit_run(credentials: DatabricksCredentials, payload: dict[str, Any]) -> int:
    """Submit a one-time run (``jobs/runs/submit``); its run id."""
    from prefect_databricks.jobs import jobs_runs_submit

    return int(_reply(jobs_runs_submit.fn(credentials, **payload))["run_id"])


def get_run(credentials: DatabricksCredentials, run_id: int) -> dict[str, Any]:
    """A run's state, tasks and page (``jobs/runs/get``)."""
    from prefect_databricks.jobs import jobs_runs_get

    return _reply(jobs_runs_get.fn(run_id, credentials))


def get_run_output(credentials: DatabricksCredentials, run_id: int) -> dict[str, Any]:
    """A task run's output and logs (``jobs/runs/get-output``)."""
    from prefect_databricks.jobs import jobs_runs_get_output

    return _reply(jobs_runs_get_output.fn(run_id, credentials))


def _reply(coroutine: Any) -> dict[str, Any]:
    """The JSON reply of a prefect-databricks call (its functions are coroutines)."""
    from prefect.utilities.asyncutils import run_coro_as_sync

    return dict(run_coro_as_sync(coroutine) or {})


__all__ = ["get_run", "get_run_output", "submit_run"]
