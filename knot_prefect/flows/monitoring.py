"""``monitoring_flow``: drift of features and predictions against the model's reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger

from knot_prefect.flows.defaults import (
    DEMO_FEATURE_SERVICE,
    DEMO_MODEL,
    DEMO_PREDICTIONS_TABLE,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)


@flow(name="knot-monitoring", log_prints=True)
def monitoring_flow(
    warehouse: str = LOCAL_WAREHOUSE,
    feature_store: str = LOCAL_FEATURES,
    tracking: str = LOCAL_TRACKING,
    model_name: str = DEMO_MODEL,
    alias: str = "champion",
    predictions_table: str = DEMO_PREDICTIONS_TABLE,
    features: str | list[str] = DEMO_FEATURE_SERVICE,
    key_columns: list[str] | None = None,
    since: datetime | None = None,
    psi_warning: float = 0.1,
    psi_error: float = 0.25,
) -> Any:
    """Compare recent predictions and their features with the model's reference profile.

    Reads the predictions the alias's current version published (since ``since``),
    fetches the features they were scored on (at each row's ``features_as_of``),
    and computes per column the population stability index and the Kolmogorov-Smirnov
    test against the profile stored at training. Each column's PSI is a check:
    above ``psi_warning`` warns, above ``psi_error`` fails the run. Values are logged
    to MLflow (one run per monitoring run) and kept as keyed Prefect artifacts, whose
    history shows drift over time.

    Args:
        warehouse: Warehouse block document holding the predictions.
        feature_store: FeastFeatureStore block document.
        tracking: MLflowTracking block document.
        model_name: Registered model name.
        alias: The alias whose current version is monitored.
        predictions_table: Table written by ``batch_inference_flow``.
        features: Feast feature service name or ``view:feature`` references.
        key_columns: Entity keys (default: the columns ending in ``_id``).
        since: Only predictions scored at or after this time.
        psi_warning: PSI above which a column warns.
        psi_error: PSI above which the run fails.

    Returns:
        Drift per column, as a dict (a "completed with warnings" state on warnings).
    """
    import mlflow

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.lineage.columns import LINEAGE_COLUMNS
    from knot_prefect.monitoring.drift import column_drift
    from knot_prefect.monitoring.reference import load_reference_profile
    from knot_prefect.tasks import check, extract, finish_with_warnings, training_set
    from knot_prefect.tracking.runs import tracked_run

    logger = get_run_logger()
    warehouse_block = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    store_block = resolve_block(feature_store, FeastFeatureStore)
    tracking_block = resolve_block(tracking, MLflowTracking)

    client = tracking_block.get_client()
    version = int(client.get_model_version_by_alias(model_name, alias).version)
    profile = load_reference_profile(tracking_block, model_name, version)

    table = TableName.parse(predictions_table).quoted()
    sql = f"select * from {table} where model_name = :model and model_version = :version"
    params: dict[str, Any] = {"model": model_name, "version": version}
    if since is not None:
        sql += " and scored_at >= :since"
        params["since"] = since
    predictions = extract(warehouse_block, sql, params)
    if predictions.empty:
        raise ValueError(
            f"No predictions of {model_name} v{version} in {predictions_table}"
            f"{f' since {since}' if since else ''}: run batch_inference_flow first."
        )
    keys = key_columns or [c for c in predictions.columns if c.endswith("_id")]
    # Features as the model saw them: at the point in time scoring used.
    entities = predictions[keys].assign(event_timestamp=predictions["features_as_of"])
    feature_rows = training_set(store_block, entities, features)
    current = feature_rows.drop(columns=[*keys, "event_timestamp"]).join(
        predictions.drop(columns=[*keys, *LINEAGE_COLUMNS], errors="ignore").reset_index(drop=True)
    )

    drift = column_drift(profile, current)
    with tracked_run(tracking_block, run_name="monitoring",
                     tags={"knot.model": f"{model_name}/{version}"}):
        mlflow.log_metrics({f"psi_{d.column}": d.psi for d in drift})
        mlflow.log_metrics({f"ks_{d.column}": d.ks_statistic for d in drift})
    for item in drift:
        name = f"drift-{model_name}-{item.column}"
        check(item.psi, f"{name}-warning", upper=psi_warning, severity="warning")
    for item in drift:
        check(item.psi, f"drift-{model_name}-{item.column}-error", upper=psi_error,
              severity="error")
    logger.info("Drift of %d column(s) computed on %d rows.", len(drift), len(current))
    publish_summary(
        "monitoring-summary",
        f"Monitoring of {model_name} v{version} (@{alias})",
        [(d.column, f"PSI {d.psi:.4f}, KS {d.ks_statistic:.4f} (p={d.ks_pvalue:.3g})")
         for d in drift],
        notes=f"{len(current)} predictions from {predictions_table}; thresholds: "
        f"warning > {psi_warning}, error > {psi_error}.",
    )
    return finish_with_warnings({d.column: d.to_dict() for d in drift})
