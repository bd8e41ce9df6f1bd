"""The ``evaluate`` task: score a model on labelled data, log metrics and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.tracking.scoring import Task

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking


@dataclass
class Evaluation:
    """What ``evaluate`` measured.

    Attributes:
        model_uri: The model that was scored.
        task: ``"classification"`` or ``"regression"``.
        metrics: Metric name -> value (see :mod:`knot_prefect.tracking.scoring`).
        rows: Number of evaluation rows.
        run_id: The MLflow run holding the metrics and plots.
        plots: Artifact paths of the plots in that run.
    """

    model_uri: str
    task: str
    metrics: dict[str, float]
    rows: int
    run_id: str
    plots: list[str] = field(default_factory=list)


def evaluate_model(
    model_uri: str,
    data: pd.DataFrame,
    target: str,
    task: Task = "classification",
    tracking: MLflowTracking | str | None = None,
    *,
    run_name: str = "evaluate",
) -> Evaluation:
    """Score a model on labelled data; log metrics and plots to MLflow and a summary to Prefect.

    Classification logs accuracy, precision, recall, f1 (and roc_auc and log_loss when
    the model gives probabilities) with a confusion matrix and ROC curve; regression
    logs rmse, mae and r2 with residual plots. Metrics are prefixed ``eval_`` in MLflow.

    Args:
        model_uri: Any MLflow model URI (``models:/...``, ``runs:/...``).
        data: Evaluation rows, features plus the ``target`` column.
        target: The label column.
        task: ``"classification"`` or ``"regression"``.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.
        run_name: Name of the MLflow run that records the evaluation.

    Returns:
        The metrics, the run and the plot paths.

    Examples:
        >>> from prefect import flow
        >>> @flow
        ... def check(model_uri, frame):
        ...     return evaluate(model_uri, frame, target="label").metrics["f1"]
    """
    import mlflow

    from knot_prefect.tracking import plots
    from knot_prefect.tracking.runs import tracked_run
    from knot_prefect.tracking.scoring import load_for_scoring, metrics_for, predict_for_scoring

    with tracked_run(tracking, run_name=run_name, tags={"knot.model_uri": model_uri}) as run:
        model = load_for_scoring(model_uri)
        predictions = predict_for_scoring(model, data, target, task)
        metrics = metrics_for(predictions, task)
        mlflow.log_metrics({f"eval_{name}": value for name, value in metrics.items()})
        mlflow.log_param("eval_rows", len(data))
        figures = []
        if task == "classification":
            figures.append(("confusion_matrix", plots.confusion_matrix_figure(predictions)))
            if predictions.y_proba is not None and len(set(predictions.y_true.tolist())) > 1:
                figures.append(("roc", plots.roc_figure(predictions)))
        else:
            figures.append(("residuals", plots.residuals_figure(predictions)))
        paths = []
        for name, figure in figures:
            path = f"evaluation/{name}.png"
            mlflow.log_figure(figure, path)
            paths.append(path)
    result = Evaluation(
        model_uri=model_uri,
        task=task,
        metrics=metrics,
        rows=len(data),
        run_id=run.info.run_id,
        plots=paths,
    )
    _report(result)
    return result


evaluate = task(name="evaluate", cache_policy=NO_CACHE)(evaluate_model)


def _report(result: Evaluation) -> None:
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import TaskRunContext

    if TaskRunContext.get() is None:
        return
    rows = "\n".join(f"| {name} | {value:.6g} |" for name, value in result.metrics.items())
    create_markdown_artifact(
        key="model-evaluation",
        markdown=(
            f"### Evaluation of `{result.model_uri}`\n\n"
            f"{result.task}, {result.rows} rows, MLflow run `{result.run_id}`\n\n"
            f"| metric | value |\n|---|---|\n{rows}\n\n"
            f"Plots in the run: {', '.join(f'`{path}`' for path in result.plots)}"
        ),
        description=f"Metrics of {result.model_uri}.",
    )
