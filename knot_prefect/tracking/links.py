"""Prefect artifacts that point from a Prefect run to its MLflow run."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) built from ``parts``.

    Examples:
        >>> artifact_key("mlflow-run", "Train Model_v2")
        'mlflow-run-train-model-v2'
    """
    text = "-".join(part for part in parts if part).lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text)).strip("-")[:100] or "knot"


def link_run(
    tracking: MLflowTracking, experiment_id: str, run_id: str, run_name: str
) -> str | None:
    """Create a Prefect artifact leading to the MLflow run; only inside a Prefect run.

    For a tracking server it is a link artifact to the run's page; for the embedded
    store (no web page) a markdown note with the run id and the command to browse it.

    Returns:
        The artifact key, or None outside a Prefect run.
    """
    from prefect.artifacts import create_link_artifact, create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    key = artifact_key("mlflow-run", run_name)
    url = tracking.run_page_url(experiment_id, run_id)
    if url is not None:
        create_link_artifact(
            link=url,
            link_text=f"MLflow run {run_name}",
            key=key,
            description=f"MLflow run `{run_id}` in experiment `{tracking.experiment_name}`.",
        )
        return key
    create_markdown_artifact(
        markdown=(
            f"### MLflow run {run_name}\n\n"
            f"| | |\n|---|---|\n"
            f"| run id | `{run_id}` |\n"
            f"| experiment | `{tracking.experiment_name}` (id {experiment_id}) |\n"
            f"| tracking store | `{tracking.safe_uri()}` |\n\n"
            f"Browse it with `mlflow ui --backend-store-uri {tracking.safe_uri()}`."
        ),
        key=key,
        description=f"MLflow run `{run_id}`.",
    )
    return key
