"""End a flow as "completed with warnings" when a warning check or contract failed.

Checks and validations record their status in their artifacts, which Prefect ties
to the flow run; reading them back works wherever the tasks ran (threads, processes
or a Dask cluster).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from knot_prefect.run_context import WARNING_STATUSES

WARNINGS_STATE_NAME = "CompletedWithWarnings"
_KEY_PREFIXES = ("check-", "contract-")


def run_warnings(flow_run_id: str | UUID | None = None) -> list[str]:
    """What failed without failing the run: warning checks, warned or quarantined contracts.

    Args:
        flow_run_id: The flow run to look at (default: the current one).

    Returns:
        One line per warning, from the artifacts' descriptions; empty outside a run.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from knot_prefect.run_context import current_flow_run_id

    run_id = flow_run_id or current_flow_run_id()
    if run_id is None:
        return []
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(run_id))])
            )
        )
    warnings = []
    for artifact in sorted(artifacts, key=lambda a: a.created or 0):
        if not (artifact.key or "").startswith(_KEY_PREFIXES):
            continue
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        if isinstance(rows, list) and any(
            isinstance(row, dict) and row.get("status") in WARNING_STATUSES for row in rows
        ):
            headline = (artifact.description or artifact.key or "").splitlines()[0]
            warnings.append(headline)
    return warnings


def finish_with_warnings(result: Any = None, flow_run_id: str | UUID | None = None) -> Any:
    """Return this from a flow so warnings show in its final state.

    Args:
        result: What the flow returns.
        flow_run_id: The flow run (default: the current one).

    Returns:
        ``result`` unchanged when nothing warned; otherwise a ``Completed`` state named
        ``CompletedWithWarnings`` whose message lists the warnings and whose data
        is ``result``.

    Examples:
        Outside a flow run nothing can have warned, so the result comes back as is:

        >>> finish_with_warnings("done")
        'done'

        In a flow, return it last::

            @flow
            def scoring():
                check(auc, "auc", lower=0.7)  # a warning check
                return finish_with_warnings(summary)
    """
    from prefect.states import Completed

    warnings = run_warnings(flow_run_id)
    if not warnings:
        return result
    message = f"Completed with {len(warnings)} warning(s): " + " | ".join(warnings)
    return Completed(name=WARNINGS_STATE_NAME, message=message, data=result)
