"""``monitoring_flow``: drift of features and predictions against the model's reference."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger

from knot_prefect.documents.defaults import (
    DEFAULT_ALIAS,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)


@flow(name="knot-monitoring", log_prints=True)
def monitoring_flow(
    spec: str | None = None,
    model_name: str | None = None,
    predictions_table: str | None = None,
    key_columns: list[str] | None = None,
    features: str | list[str] | None = None,
    entity_sql: str | None = None,
    entity_params: dict[str, Any] | None = None,
    alias: str = DEFAULT_ALIAS,
    warehouse: str | None = None,
    feature_store: str | None = None,
    tracking: str | None = None,
    since: datetime | None = None,
    psi_warning: float = 0.1,
    psi_error: float = 0.25,
    rollback_within: str | None = None,
) -> Any:
    """Compare recent predictions and their features with the model's reference profile.

    Reads the predictions the alias's current version published (since ``since``),
    fetches the features they were scored on (from Feast at each row's
    ``features_as_of``, or, without a feature store, the rows of ``entity_sql`` joined
    on the keys),
    and computes per column the population stability index and the Kolmogorov-Smirnov
    test against the profile stored at training. Each column's PSI is a check:
    above ``psi_warning`` warns, above ``psi_error`` fails the run. A run with drift
    emits one ``knot.drift.detected`` event about the model and alias (see
    :mod:`knot_prefect.monitoring.events`) for automations. Values are logged
    to MLflow (one run per monitoring run) and kept as keyed Prefect artifacts, whose
    history shows drift over time.

    With ``rollback_within`` (e.g. ``"2h"``) the run watches a new champion: when
    error-level drift fails it while the monitored version is within that window after
    ``promote`` gave it the alias, the alias is rolled back to the version before it
    (see :mod:`knot_prefect.monitoring.watch`), with the reason in the
    ``knot.model.rolled-back`` event and the ``model-rollback`` artifact; the run
    still fails.

    Every parameter left empty comes from the model spec when one is given.

    Args:
        spec: ModelSpec block document name, or the path of a model spec YAML file.
        model_name: Registered model name (required).
        predictions_table: Table written by ``batch_inference_flow`` (required; the
            spec's ``output_table``).
        key_columns: Entity keys; when empty, the single column ending in ``_id``
            (logged; several or none is an error).
        features: Feast feature service name or ``view:feature`` references; empty
            when the model reads the table's own columns.
        entity_sql: Without ``features``: the table or query whose own columns the
            model scored (the spec's ``scoring_source`` or ``source``).
        entity_params: Values bound to ``:name`` placeholders of ``entity_sql``.
        alias: The alias whose current version is monitored.
        warehouse: Warehouse block document holding the predictions (default
            ``local-warehouse``).
        feature_store: FeastFeatureStore block document (default ``local-features``).
        tracking: MLflowTracking block document (default ``local-mlflow``).
        since: Only predictions scored at or after this time.
        psi_warning: PSI above which a column warns.
        psi_error: PSI above which the run fails.
        rollback_within: The watch window after a promotion, e.g. ``"2h"``; None never
            rolls back.

    Returns:
        Drift per column, as a dict (a "completed with warnings" state on warnings).
    """
    import mlflow

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.durations import parse_duration
    from knot_prefect.flows._parameters import key_columns_of, settle
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.lineage.columns import ALL_LINEAGE_COLUMNS
    from knot_prefect.monitoring.drift import column_drift
    from knot_prefect.monitoring.events import drift_event, emit_drift_event
    from knot_prefect.monitoring.reference import load_reference_profile
    from knot_prefect.tasks import check, extract, finish_with_warnings, training_set
    from knot_prefect.tasks.promotion_watch import roll_back_if_watched
    from knot_prefect.tracking.runs import tracked_run

    logger = get_run_logger()
    watch = None if rollback_within is None else parse_duration(rollback_within,
                                                                "rollback_within")
    given = settle("monitoring_flow", spec)
    model_name = given.required(model_name, "model_name", "model_name",
                                "the registered model name")
    predictions_table = given.required(predictions_table, "predictions_table",
                                       "output_table", "the table of predictions")
    features = given.value(features, "features")
    if not features:
        entity_sql = given.required(
            entity_sql if entity_sql is not None else (
                given.spec.rows_to_score if given.spec is not None else None),
            "entity_sql", "source",
            "without features=, the table or query whose columns the model scored")
    warehouse_block = resolve_block(given.or_default(warehouse, "warehouse", LOCAL_WAREHOUSE),
                                    Warehouse, parameter="warehouse")
    tracking_block = resolve_block(given.or_default(tracking, "tracking", LOCAL_TRACKING),
                                    MLflowTracking, parameter="tracking")

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
    keys = key_columns_of([c for c in predictions.columns if c not in ALL_LINEAGE_COLUMNS],
                          given.value(key_columns, "key_columns"), logger,
                          predictions_table)
    scored = predictions.drop(columns=[*keys, *ALL_LINEAGE_COLUMNS], errors="ignore")
    if features:
        # Features as the model saw them: at the point in time scoring used.
        store_block = resolve_block(
            given.or_default(feature_store, "feature_store", LOCAL_FEATURES),
            FeastFeatureStore, parameter="feature_store")
        entities = predictions[keys].assign(event_timestamp=predictions["features_as_of"])
        feature_rows = training_set(store_block, entities, features).drop(
            columns=[*keys, "event_timestamp"])
    else:
        # The table's own columns, as they are now, for the scored keys.
        source_rows = extract(warehouse_block, entity_sql, entity_params)
        feature_rows = predictions[keys].merge(
            source_rows.drop(columns=[c for c in scored.columns if c in source_rows.columns]),
            on=keys, how="left",
        ).drop(columns=keys)
    current = feature_rows.reset_index(drop=True).join(scored.reset_index(drop=True))

    drift = column_drift(profile, current)
    with tracked_run(tracking_block, run_name="monitoring",
                     tags={"knot.model": f"{model_name}/{version}"}):
        mlflow.log_metrics({f"psi_{d.column}": d.psi for d in drift})
        mlflow.log_metrics({f"ks_{d.column}": d.ks_statistic for d in drift})
    # Emitted before the checks, which stop the run on error-level drift.
    event = emit_drift_event(
        drift_event(model_name, alias, version, drift, psi_warning, psi_error)
    )
    if event is not None:
        logger.warning("Drift detected (%s): %s", event["payload"]["severity"],
                       ", ".join(event["payload"]["features"]))
    for item in drift:
        name = f"drift-{model_name}-{item.column}"
        check(item.psi, f"{name}-warning", upper=psi_warning, severity="warning")
    if watch is not None:
        # Rolled back before the failing checks stop the run.
        roll_back_if_watched(tracking_block, model_name, alias, version, [
            f"drift-{model_name}-{d.column}-error" for d in drift if d.psi > psi_error],
            watch)
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
    return finish_with_warnings({d.column: asdict(d) for d in drift})
