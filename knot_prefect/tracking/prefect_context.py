"""What knot records about the Prefect run an MLflow run belongs to."""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass

# Environment variables CI systems and deployment tools set to the commit being run.
_COMMIT_VARIABLES = (
    "KNOT_GIT_COMMIT",
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "BUILD_SOURCEVERSION",
    "GIT_COMMIT",
)

TAG_PREFIX = "knot.prefect."


@dataclass(frozen=True)
class PrefectRunInfo:
    """The Prefect run around the current code, as far as it is known.

    Attributes:
        flow_run_id: Id of the flow run, if any.
        flow_run_name: Name of the flow run.
        flow_run_url: Page of the flow run in the Prefect UI (or API when no UI is set).
        flow_name: Name of the flow.
        deployment_id: Id of the deployment that started the flow run.
        deployment_name: Name of that deployment, when it can be read cheaply.
        work_pool: Work pool that ran the flow run.
        task_run_id: Id of the task run, when inside a task.
        task_run_name: Name of the task run.
        attempt: Run count of the innermost run (1 on the first try, 2 on the first retry).
        git_commit: Commit of the code being run, where known.
    """

    flow_run_id: str | None = None
    flow_run_name: str | None = None
    flow_run_url: str | None = None
    flow_name: str | None = None
    deployment_id: str | None = None
    deployment_name: str | None = None
    work_pool: str | None = None
    task_run_id: str | None = None
    task_run_name: str | None = None
    attempt: int = 1
    git_commit: str | None = None

    @property
    def in_run(self) -> bool:
        """Whether the code runs inside a Prefect flow run or task run."""
        return self.flow_run_id is not None or self.task_run_id is not None

    @property
    def scope_id(self) -> str | None:
        """The id that stays the same across retries: the task run's, else the flow run's."""
        return self.task_run_id or self.flow_run_id

    def tags(self) -> dict[str, str]:
        """MLflow tags describing this Prefect run (unknown values are left out).

        Examples:
            >>> PrefectRunInfo(flow_run_id="abc", flow_name="train").tags()
            {'knot.prefect.flow_run_id': 'abc', 'knot.prefect.flow_name': 'train'}
        """
        values = {
            "flow_run_id": self.flow_run_id,
            "flow_run_name": self.flow_run_name,
            "flow_run_url": self.flow_run_url,
            "flow_name": self.flow_name,
            "deployment_id": self.deployment_id,
            "deployment": self.deployment_name,
            "work_pool": self.work_pool,
            "task_run_id": self.task_run_id,
            "task_run_name": self.task_run_name,
        }
        tags = {f"{TAG_PREFIX}{key}": value for key, value in values.items() if value}
        if self.git_commit:
            tags["knot.git.commit"] = self.git_commit
        return tags


def current_prefect_run() -> PrefectRunInfo:
    """Describe the Prefect run around the caller; empty outside any run.

    Examples:
        >>> current_prefect_run().in_run
        False
    """
    from prefect.context import FlowRunContext, TaskRunContext

    flow_context = FlowRunContext.get()
    task_context = TaskRunContext.get()
    flow_run = flow_context.flow_run if flow_context else None
    task_run = task_context.task_run if task_context else None

    flow_run_id = str(flow_run.id) if flow_run else None
    if flow_run_id is None and task_run is not None and task_run.flow_run_id:
        flow_run_id = str(task_run.flow_run_id)
    attempt = 1
    if task_run is not None:
        attempt = task_run.run_count or 1
    elif flow_run is not None:
        attempt = flow_run.run_count or 1
    deployment_id = str(flow_run.deployment_id) if flow_run and flow_run.deployment_id else None
    return PrefectRunInfo(
        flow_run_id=flow_run_id,
        flow_run_name=flow_run.name if flow_run else None,
        flow_run_url=_flow_run_url(flow_run_id) if flow_run_id else None,
        flow_name=flow_context.flow.name if flow_context and flow_context.flow else None,
        deployment_id=deployment_id,
        deployment_name=_deployment_name() if deployment_id else None,
        work_pool=flow_run.work_pool_name if flow_run else None,
        task_run_id=str(task_run.id) if task_run else None,
        task_run_name=task_run.name if task_run else None,
        attempt=attempt,
        git_commit=git_commit(),
    )


def _flow_run_url(flow_run_id: str) -> str | None:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    ui_url = PREFECT_UI_URL.value()
    if ui_url:
        return f"{str(ui_url).rstrip('/')}/runs/flow-run/{flow_run_id}"
    api_url = PREFECT_API_URL.value()
    if api_url:
        return f"{str(api_url).rstrip('/')}/flow_runs/{flow_run_id}"
    return None


def _deployment_name() -> str | None:
    try:
        from prefect.runtime import deployment

        name = deployment.name
    except Exception:  # The API may be unreachable; the id is recorded anyway.
        return None
    return str(name) if name else None


def git_commit() -> str | None:
    """The commit of the code being run: from CI variables, else ``git rev-parse HEAD``.

    Returns:
        A commit hash, or None when neither source knows it.
    """
    for name in _COMMIT_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return _git_head(os.getcwd())


@functools.lru_cache(maxsize=16)
def _git_head(folder: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None
