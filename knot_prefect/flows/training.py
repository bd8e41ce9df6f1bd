"""``training_flow``: entity rows -> contract -> Feast training set -> train -> promote.

Every external system is a block document name, so the flow runs on embedded defaults
and, unchanged, against a team's PostgreSQL, Feast repo and MLflow server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prefect import flow, get_run_logger

from knot_prefect.flows.defaults import (
    DEMO_CONTRACT,
    DEMO_ENTITY_SQL,
    DEMO_FEATURE_SERVICE,
    DEMO_MODEL,
    DEMO_TRAINER,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)


@dataclass
class TrainingSummary:
    """What a training run did (also written as the run-summary artifact)."""

    entity_rows: int
    training_rows: int
    test_rows: int
    model_uri: str
    model_name: str
    model_version: int
    metrics: dict[str, float]
    promotion: dict[str, Any]
    feature_views: str
    contract_version: str | None
    reference_profile: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_CHECKS: list[dict[str, Any]] = [
    {"metric": "roc_auc", "lower": 0.6, "severity": "error"},
    {"metric": "roc_auc", "lower": 0.75, "severity": "warning"},
]


@flow(name="knot-training", log_prints=True)
def training_flow(
    warehouse: str = LOCAL_WAREHOUSE,
    feature_store: str = LOCAL_FEATURES,
    tracking: str = LOCAL_TRACKING,
    contract: str | None = DEMO_CONTRACT,
    entity_sql: str = DEMO_ENTITY_SQL,
    entity_params: dict[str, Any] | None = None,
    features: str | list[str] = DEMO_FEATURE_SERVICE,
    target: str = "churned",
    key_columns: list[str] | None = None,
    model_name: str = DEMO_MODEL,
    trainer: str = DEMO_TRAINER,
    params: dict[str, Any] | None = None,
    task: str = "classification",
    alias: str = "champion",
    promotion_metric: str = "roc_auc",
    min_delta: float = 0.0,
    test_fraction: float = 0.25,
    checks: list[dict[str, Any]] | None = None,
) -> Any:
    """Train a model on point-in-time correct features and promote it if it wins.

    Steps: read entity rows (keys, timestamp, label) from the warehouse -> validate them
    against the contract -> build the training set from Feast -> split train/test by a
    hash of the keys -> train under a tracked MLflow run -> evaluate -> metric checks
    (``error`` stops the run before anything is registered) -> register -> store the
    reference profile of training features and predictions with the version -> promote
    (champion/challenger on the same test rows) -> run-summary artifact.

    Args:
        warehouse: Warehouse block document holding the entity rows.
        feature_store: FeastFeatureStore block document.
        tracking: MLflowTracking block document.
        contract: DataContract block document for the entity rows (None to skip).
        entity_sql: Query returning keys, ``event_timestamp`` and the label.
        entity_params: Values bound to ``:name`` placeholders of ``entity_sql``.
        features: A Feast feature service name or ``view:feature`` references.
        target: The label column.
        key_columns: Entity key columns (default: the columns ending in ``_id``).
        model_name: Registered model name.
        trainer: Import path of ``fn(data, params)`` returning a model or a model URI.
        params: Hyperparameters passed to the trainer and logged.
        task: ``classification`` or ``regression``.
        alias: The alias a winning model receives.
        promotion_metric: Metric compared between challenger and champion.
        min_delta: How much better the challenger must be.
        test_fraction: Share of rows held out for evaluation and promotion.
        checks: Metric checks ``{"metric", "lower"/"upper"/"equal", "severity"}``.

    Returns:
        The :class:`TrainingSummary` as a dict (a "completed with warnings" state when a
        warning check failed).

    Examples:
        ```python
        from knot_prefect.flows import training_flow

        training_flow(warehouse="prod-postgres", tracking="prod-mlflow")
        ```
    """
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.flows._support import import_callable, split_by_key
    from knot_prefect.flows.caching import step_cache_key
    from knot_prefect.lineage.columns import feature_view_versions, source_query_hash
    from knot_prefect.tasks import (
        check,
        evaluate,
        extract,
        finish_with_warnings,
        promote,
        register_model,
        train,
        training_set,
        validate,
    )

    logger = get_run_logger()
    warehouse_block = resolve_block(warehouse, Warehouse)  # type: ignore[type-abstract]
    store_block = resolve_block(feature_store, FeastFeatureStore)
    tracking_block = resolve_block(tracking, MLflowTracking)
    train_fn = import_callable(trainer)
    params = dict(params or {})

    entities = extract(warehouse_block, entity_sql, entity_params)
    contract_version = None
    if contract:
        from knot_prefect.blocks.contract import DataContract

        contract_block = resolve_block(contract, DataContract)
        contract_version = contract_block.version
        entities = validate(entities, contract_block, on_failure="raise")

    rows = training_set(store_block, entities, features)
    keys = key_columns or [c for c in entities.columns if c.endswith("_id")]
    train_rows, test_rows = split_by_key(rows, keys, test_fraction)
    drop = [*keys, "event_timestamp"]
    train_frame = train_rows.drop(columns=[c for c in drop if c in train_rows.columns])
    test_frame = test_rows.drop(columns=[c for c in drop if c in test_rows.columns])
    logger.info("Training on %d rows, evaluating on %d.", len(train_frame), len(test_frame))

    cache_key = step_cache_key(
        "train", train_frame, {"trainer": trainer, "params": params, "model": model_name}
    )
    model_uri = train.with_options(
        cache_key_fn=lambda *_: cache_key, persist_result=True
    )(train_fn, train_frame, params, tracking_block, target=target)

    evaluation = evaluate(model_uri, test_frame, target, task, tracking_block)
    from knot_prefect.tracking.fluent import fluent_store

    # The checks log to the evaluation's run in the block's store (never MLflow's
    # default store, a stray ./mlflow.db in the working folder).
    with tracking_block.session(), fluent_store(tracking_block):
        for spec in checks if checks is not None else DEFAULT_CHECKS:
            metric = spec["metric"]
            if metric not in evaluation.metrics:
                raise ValueError(
                    f"Check on {metric!r}: the evaluation has no such metric; it has "
                    f"{sorted(evaluation.metrics)}."
                )
            check(
                evaluation.metrics[metric],
                f"{model_name}-{metric}-{spec.get('severity', 'warning')}",
                lower=spec.get("lower"),
                upper=spec.get("upper"),
                equal=spec.get("equal"),
                severity=spec.get("severity", "warning"),
                mlflow_run_id=evaluation.run_id,
            )

    store = store_block.get_store()
    from knot_prefect.features.references import resolve_features, views_of

    views = feature_view_versions(store, views_of(store, resolve_features(store, features)))
    version = register_model(
        model_uri,
        model_name,
        tracking_block,
        tags={
            "knot.feature_views": views,
            "knot.contract_version": contract_version or "",
            "knot.source_query_hash": source_query_hash(entity_sql, entity_params),
        },
    )
    profile_location = _store_reference_profile(
        tracking_block, model_name, version.version, model_uri, train_frame, target
    )
    decision = promote(
        model_name,
        version.version,
        alias=alias,
        metric=promotion_metric,
        min_delta=min_delta,
        data=test_frame,
        target=target,
        task=task,
        tracking=tracking_block,
    )
    summary = TrainingSummary(
        entity_rows=len(entities),
        training_rows=len(train_frame),
        test_rows=len(test_frame),
        model_uri=model_uri,
        model_name=model_name,
        model_version=version.version,
        metrics=evaluation.metrics,
        promotion={
            "decision": decision.decision,
            "alias": alias,
            "metric": decision.metric,
            "challenger_score": decision.challenger_score,
            "champion_version": decision.champion_version,
            "champion_score": decision.champion_score,
            "reason": decision.reason,
        },
        feature_views=views,
        contract_version=contract_version,
        reference_profile=profile_location,
    )
    _publish_training_summary(summary, tracking_block, evaluation.run_id)
    return finish_with_warnings(summary.to_dict())


def _store_reference_profile(
    tracking: Any, model_name: str, version: int, model_uri: str, train_frame: Any, target: str
) -> str:
    """Profile the training features and the model's predictions on them."""
    from knot_prefect.monitoring.profile import build_profile
    from knot_prefect.monitoring.reference import save_reference_profile
    from knot_prefect.tasks.mlflow_predict import predict_frame

    features = train_frame.drop(columns=[target])
    with tracking.session():
        import mlflow

        mlflow.set_tracking_uri(tracking.resolved_tracking_uri())
        mlflow.set_registry_uri(tracking.resolved_registry_uri())
        predictions = predict_frame(df=features, model=model_uri)
    reference = features.join(predictions)
    return save_reference_profile(tracking, model_name, version, build_profile(reference))


def _publish_training_summary(summary: TrainingSummary, tracking: Any, run_id: str) -> None:
    from knot_prefect.flows._support import publish_summary

    promotion = summary.promotion
    rows = [
        ("entity rows read", summary.entity_rows),
        ("training / test rows", f"{summary.training_rows} / {summary.test_rows}"),
        ("feature views", summary.feature_views),
        ("contract version", summary.contract_version or "-"),
        ("model", f"{summary.model_name} v{summary.model_version} ({summary.model_uri})"),
        *[(f"metric {k}", round(v, 4)) for k, v in sorted(summary.metrics.items())],
        ("promotion", f"{promotion['decision']}: {promotion['reason']}"),
        ("reference profile", summary.reference_profile),
        ("MLflow", tracking.safe_uri() + f" (evaluation run {run_id})"),
    ]
    publish_summary("training-summary", "Training run summary", rows)
