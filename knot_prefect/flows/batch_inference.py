"""``batch_inference_flow``: score rows with the model holding an alias, publish with lineage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger

from knot_prefect.flows.defaults import (
    DEMO_FEATURE_SERVICE,
    DEMO_MODEL,
    DEMO_PREDICTIONS_TABLE,
    DEMO_SCORING_CONTRACT,
    DEMO_SCORING_SQL,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)


@flow(name="knot-batch-inference", log_prints=True)
def batch_inference_flow(
    warehouse: str = LOCAL_WAREHOUSE,
    feature_store: str = LOCAL_FEATURES,
    tracking: str = LOCAL_TRACKING,
    contract: str | None = DEMO_SCORING_CONTRACT,
    quarantine_table: str = "churn_scoring_quarantine",
    max_bad_fraction: float = 0.05,
    entity_sql: str = DEMO_SCORING_SQL,
    entity_params: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    features: str | list[str] = DEMO_FEATURE_SERVICE,
    feature_source: Literal["historical", "online"] = "historical",
    model_name: str = DEMO_MODEL,
    alias: str = "champion",
    output_table: str = DEMO_PREDICTIONS_TABLE,
    key_columns: list[str] | None = None,
    batch_rows: int = 50_000,
    prediction_bounds: list[float] | None = None,
) -> Any:
    """Score entity rows and upsert the predictions, each row carrying its lineage.

    Steps: read the rows to score -> validate them (failing rows are quarantined, the
    run fails only above ``max_bad_fraction``) -> features from Feast, historical as of
    ``as_of`` or online -> load the model holding ``alias`` -> check its inputs match the
    features (names missing/extra columns) -> predict in batches -> checks on the
    predictions (no nulls; within ``prediction_bounds``) -> upsert by key with the lineage
    columns (model name/version/alias, feature views with versions, contract version,
    source query hash, flow-run id, scored-at time).

    Re-running (a retry or a new run) never duplicates a key: publishing is an upsert
    inside one transaction.

    Args:
        warehouse: Warehouse block document for the rows to score and the output.
        feature_store: FeastFeatureStore block document.
        tracking: MLflowTracking block document.
        contract: DataContract block document for the rows to score (None to skip).
        quarantine_table: Where rows failing the contract go.
        max_bad_fraction: Largest tolerated share of quarantined rows.
        entity_sql: Query returning the entity keys to score.
        entity_params: Values bound to ``:name`` placeholders of ``entity_sql``.
        as_of: Point in time of historical features (default: now, UTC).
        features: Feast feature service name or ``view:feature`` references.
        feature_source: ``historical`` (offline store, point in time) or ``online``.
        model_name: Registered model name.
        alias: The alias whose model scores.
        output_table: Table receiving the predictions.
        key_columns: Columns identifying a row (default: the columns ending in ``_id``).
        batch_rows: Rows per call to the model.
        prediction_bounds: ``[lower, upper]`` every prediction must respect (error check).

    Returns:
        A summary dict (a "completed with warnings" state when a warning fired).
    """
    import pandas as pd

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.features.references import resolve_features, views_of
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.lineage.columns import Lineage, feature_view_versions, source_query_hash
    from knot_prefect.tasks import (
        check,
        extract,
        finish_with_warnings,
        load_model,
        online_features,
        predict,
        publish,
        training_set,
        validate,
    )

    logger = get_run_logger()
    warehouse_block = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    store_block = resolve_block(feature_store, FeastFeatureStore)
    tracking_block = resolve_block(tracking, MLflowTracking)
    scored_at = datetime.now(UTC)
    as_of = as_of or scored_at

    entities = extract(warehouse_block, entity_sql, entity_params)
    keys = key_columns or [c for c in entities.columns if c.endswith("_id")]
    missing_keys = [k for k in keys if k not in entities.columns]
    if missing_keys or not keys:
        raise ValueError(
            f"The rows to score have no key column {missing_keys or '(none ending in _id)'}; "
            f"their columns are {list(entities.columns)}. Pass key_columns=[...]."
        )
    contract_version = None
    rows = entities
    if contract:
        from knot_prefect.blocks.contract import DataContract

        contract_block = resolve_block(contract, DataContract)
        contract_version = contract_block.version
        rows = validate(
            entities,
            contract_block,
            on_failure="quarantine",
            max_bad_fraction=max_bad_fraction,
            quarantine=(warehouse_block, quarantine_table),
        )
    quarantined = len(entities) - len(rows)

    store = store_block.get_store()
    references = resolve_features(store, features)
    views = feature_view_versions(store, views_of(store, references))
    if feature_source == "online":
        online = online_features(store_block, rows[keys], features)
        frame = rows.merge(online, on=keys, how="left")
    else:
        frame = training_set(store_block, rows.assign(event_timestamp=pd.Timestamp(as_of)),
                             features)

    model = load_model(model_name, alias, tracking_block)
    predictions = predict(model, frame, batch_rows=batch_rows)
    for column in predictions.columns:
        check(float(predictions[column].isna().mean()), f"{output_table}-{column}-nulls",
              equal=0.0, severity="error")
        if prediction_bounds:
            lower, upper = prediction_bounds
            check(float(predictions[column].min()), f"{output_table}-{column}-min",
                  lower=lower, severity="error")
            check(float(predictions[column].max()), f"{output_table}-{column}-max",
                  upper=upper, severity="error")

    lineage = Lineage(
        model_name=model.name,
        model_version=model.version,
        model_alias=alias,
        feature_views=views,
        contract_version=contract_version,
        source_query_hash=source_query_hash(entity_sql, entity_params),
        flow_run_id=_flow_run_id(),
        features_as_of=as_of if feature_source == "historical" else scored_at,
        scored_at=scored_at,
    )
    output = lineage.attach(frame[keys].join(predictions))
    result = publish(output, warehouse_block, output_table, mode="upsert", keys=keys)
    logger.info("Published %d predictions to %s.", result.rows, output_table)

    summary = {
        "rows_read": len(entities),
        "rows_quarantined": quarantined,
        "rows_scored": len(output),
        "rows_published": result.rows,
        "output_table": output_table,
        "model": f"{model.name} v{model.version} (@{alias})",
        "feature_views": views,
        "feature_source": feature_source,
        "contract_version": contract_version,
    }
    publish_summary(
        "batch-inference-summary",
        "Batch inference run summary",
        [(k.replace("_", " "), v) for k, v in summary.items()],
        notes=f"Lineage columns on every row; ask `knot lineage {output_table} --key VALUE`.",
    )
    return finish_with_warnings(summary)


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None
