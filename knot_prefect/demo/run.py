"""``knot demo``: the whole story on embedded defaults, as one Prefect flow.

seed the DuckDB warehouse -> write and apply the Feast repo -> materialize -> train and
promote (``training_flow``) -> score and publish with lineage (``batch_inference_flow``)
-> drift (``monitoring_flow``) -> a short summary of what to open next.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

DAYS = 20


@flow(name="knot-demo", log_prints=True)
def demo_flow(rows: int = 100_000, seed: int = 7) -> dict[str, Any]:
    """Run the churn pipeline end to end on the embedded defaults.

    Args:
        rows: Approximate activity rows to generate (customers x 20 days).
        seed: Seed of the generated dataset.

    Returns:
        The outcome of each stage.
    """
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.demo.params import (
        monitoring_parameters,
        scoring_parameters,
        training_parameters,
    )
    from knot_prefect.demo.seed import prepare_demo
    from knot_prefect.flows.batch_inference import batch_inference_flow
    from knot_prefect.flows.monitoring import monitoring_flow
    from knot_prefect.flows.training import training_flow
    from knot_prefect.tasks import feast_apply, materialize

    logger = get_run_logger()
    outcome: dict[str, Any] = prepare_demo(customers=max(rows // DAYS, 50), days=DAYS, seed=seed)
    logger.info("Seeded the warehouse: %s", outcome["tables"])

    plan = feast_apply("local-features")
    end = DATASET_END + timedelta(seconds=1)
    outcome["materialized"] = materialize("local-features", end=end)
    outcome["feast_apply"] = plan

    outcome["training"] = training_flow(**training_parameters())
    outcome["scoring"] = batch_inference_flow(**scoring_parameters(as_of=DATASET_END))
    outcome["monitoring"] = monitoring_flow(**monitoring_parameters())
    return outcome


def run_demo(rows: int = 100_000, seed: int = 7) -> str:
    """Run :func:`demo_flow` and return a short, human summary with next steps."""
    started = time.perf_counter()
    outcome = demo_flow(rows=rows, seed=seed)
    return format_summary(outcome, time.perf_counter() - started)


def _value(result: Any) -> Any:
    """A subflow that finished with warnings returns a state; take its data."""
    from prefect.states import State

    return result.result() if isinstance(result, State) else result


def format_summary(outcome: dict[str, Any], seconds: float) -> str:
    """What the demo did and what to open next."""
    from knot_prefect.settings import get_settings

    training = _value(outcome["training"])
    scoring = _value(outcome["scoring"])
    monitoring = _value(outcome["monitoring"])
    promotion = training["promotion"]
    worst = max(monitoring.values(), key=lambda d: d["psi"]) if monitoring else None
    settings = get_settings()
    home = Path(outcome["home"])
    lines = [
        f"knot demo finished in {seconds:.0f}s (home: {home})",
        "",
        f"  warehouse   {', '.join(f'{t}={n}' for t, n in outcome['tables'].items())} rows",
        f"  features    materialized {_rows_materialized(outcome['materialized'])} rows "
        "to the online store",
        f"  training    {training['model_name']} v{training['model_version']}: "
        + ", ".join(f"{k}={v:.3f}" for k, v in sorted(training["metrics"].items())
                    if k in ("roc_auc", "f1", "accuracy")),
        f"  promotion   {promotion['decision']}: {promotion['reason']}",
        f"  scoring     {scoring['rows_scored']} scored, {scoring['rows_quarantined']} quarantined,"
        f" {scoring['rows_published']} upserted into {scoring['output_table']}",
    ]
    if worst:
        lines.append(f"  monitoring  largest drift: {worst['column']} PSI={worst['psi']:.3f}")
    lines += [
        "",
        "Next:",
        "  prefect server start    # runs, artifacts and blocks in the Prefect UI",
        f"  mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}",
        f"  knot lineage {scoring['output_table']} --key 42    # what scored customer 42",
    ]
    return "\n".join(lines)


def _rows_materialized(views: list[dict[str, Any]]) -> int:
    return sum(int(view.get("rows", 0)) for view in views)
