"""``training_flow``: training rows -> contract -> features -> train -> promote.

Every external system is a block document name, so the flow runs on embedded defaults
and, unchanged, against a team's PostgreSQL, Feast repo and MLflow server. The
table, keys, label and model are the caller's (parameters or a model spec).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prefect import flow, get_run_logger

from knot_prefect.documents.defaults import (
    DEFAULT_ALIAS,
    DEFAULT_TRAINER,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)
from knot_prefect.errors import ConfigurationError
from knot_prefect.lineage.columns import WAREHOUSE_COLUMNS


@dataclass
class TrainingSummary:
    """What a training run did (also written as the run-summary artifact)."""

    entity_rows: int
    training_rows: int
    test_rows: int
    model_uri: str
    model_name: str
    model_version: int
    task: str
    metrics: dict[str, float]
    promotion: dict[str, Any]
    feature_views: str
    contract_version: str | None
    reference_profile: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@flow(name="knot-training", log_prints=True)
def training_flow(
    spec: str | None = None,
    entity_sql: str | None = None,
    target: str | None = None,
    key_columns: list[str] | None = None,
    timestamp_column: str | None = None,
    task: Literal["binary", "multiclass", "regression"] | None = None,
    model_name: str | None = None,
    features: str | list[str] | None = None,
    trainer: str | None = None,
    params: dict[str, Any] | None = None,
    contract: str | None = None,
    entity_params: dict[str, Any] | None = None,
    warehouse: str | None = None,
    feature_store: str | None = None,
    tracking: str | None = None,
    alias: str = DEFAULT_ALIAS,
    promotion_metric: str | None = None,
    min_delta: float = 0.0,
    test_fraction: float = 0.25,
    checks: list[dict[str, Any]] | None = None,
    train_on: str | None = None,
) -> Any:
    """Train a model on a team's table and promote it if it wins.

    Steps: read the training rows (keys, label, and either the model's input columns or
    an event timestamp for Feast) from the warehouse -> validate them against the
    contract -> features: the table's own columns, or Feast's point-in-time join at
    ``timestamp_column`` -> split train/test by a hash of the keys -> train under a
    tracked MLflow run -> evaluate -> metric checks (``error`` stops the run before
    anything is registered) -> register -> store the reference profile of training
    features and predictions with the version -> promote (champion/challenger on the
    same test rows) -> run-summary artifact.

    Every parameter left empty comes from the model spec when one is given.

    Args:
        spec: ModelSpec block document name, or the path of a model spec YAML file.
        entity_sql: Table name or query returning the training rows (required).
        target: The label column (required).
        key_columns: Entity key columns; when empty, the single column ending in
            ``_id`` (logged; several or none is an error).
        timestamp_column: Event time of each row; required with ``features`` (Feast
            joins features as of it), otherwise left out of the model's inputs.
        task: ``binary``, ``multiclass`` or ``regression``; inferred from the label
            and logged when empty.
        model_name: Registered model name (required).
        features: A Feast feature service name or ``view:feature`` references; empty
            to train on the table's own columns.
        trainer: A built-in trainer (``gradient_boosting``, the default, ``xgboost``,
            ``lightgbm``) or the import path of ``fn(data, target, params)`` (see
            docs/trainers.md).
        params: Hyperparameters passed to the trainer and logged.
        contract: DataContract block document for the training rows (none: no check).
        entity_params: Values bound to ``:name`` placeholders of ``entity_sql``.
        warehouse: Warehouse block document (default ``local-warehouse``).
        feature_store: FeastFeatureStore block document (default ``local-features``),
            used only with ``features``.
        tracking: MLflowTracking block document (default ``local-mlflow``).
        alias: The alias a winning model receives.
        promotion_metric: Metric compared between challenger and champion (default by
            task: ``roc_auc``, ``f1`` or ``rmse``).
        min_delta: How much better the challenger must be.
        test_fraction: Share of rows held out for evaluation and promotion.
        checks: Metric checks ``{"metric", "lower"/"upper"/"equal", "severity"}``
            (default by task: ROC AUC for binary, macro F1 for multiclass, R² for
            regression; ``[]`` for none).
        train_on: Run the training step on another work pool (e.g. a GPU pool): its
            name, or ``"knot-step/DEPLOYMENT"``. The step runs as a child flow run of
            the pool's ``knot-step`` deployment (``knot deploy step_flow --pool
            POOL``) and returns through Prefect's default result storage block
            (``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK``), which both pools must reach.
            Empty to train in this flow run.

    Returns:
        The :class:`TrainingSummary` as a dict (a "completed with warnings" state when a
        warning check failed).

    Examples:
        ```python
        from knot_prefect.flows import training_flow

        training_flow(entity_sql="analytics.loans", target="defaulted",
                      key_columns=["loan_id"], model_name="loan-default")
        training_flow(spec="loan-default", tracking="prod-mlflow")
        ```
    """
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.flows._parameters import (
        DEFAULT_PROMOTION_METRIC,
        default_checks,
        evaluation_task,
        key_columns_of,
        require_columns,
        settle,
    )
    from knot_prefect.flows._support import split_by_key
    from knot_prefect.flows.caching import step_cache_key
    from knot_prefect.lineage.columns import source_query_hash
    from knot_prefect.lineage.versions import pin_source_versions, versions_text
    from knot_prefect.tasks import (
        check,
        evaluate,
        extract,
        finish_with_warnings,
        promote,
        register_model,
        train,
        validate,
    )
    from knot_prefect.trainers.contract import check_task, infer_task, resolve_trainer

    logger = get_run_logger()
    given = settle("training_flow", spec)
    source = given.required(entity_sql, "entity_sql", "source",
                            "the table or query of the training rows")
    target = given.required(target, "target", "target", "the label column")
    model_name = given.required(model_name, "model_name", "model_name",
                                "the registered model name")
    timestamp_column = given.value(timestamp_column, "timestamp_column")
    features = given.value(features, "features")
    trainer = given.or_default(trainer, "trainer", DEFAULT_TRAINER)
    params = dict(given.or_default(params, "trainer_params", {}) or {})
    contract = given.value(contract, "contract")
    checks = given.value(checks, "checks")
    task = given.value(task, "task")
    if features and not timestamp_column:
        raise ConfigurationError(
            "training_flow needs timestamp_column= with features=: Feast joins each "
            "row's features as of that time. Example: training_flow(..., features="
            f"{features!r}, timestamp_column=\"event_time\")."
        )
    warehouse_block = resolve_block(given.or_default(warehouse, "warehouse", LOCAL_WAREHOUSE),
                                    Warehouse, parameter="warehouse")
    tracking_block = resolve_block(given.or_default(tracking, "tracking", LOCAL_TRACKING),
                                    MLflowTracking, parameter="tracking")
    train_fn = resolve_trainer(trainer)

    warehouse_block, source_versions = pin_source_versions(warehouse_block, source,
                                                           entity_params)
    entities = extract(warehouse_block, source, entity_params)
    require_columns(entities, {"target": target, "timestamp_column": timestamp_column},
                    "the training rows")
    keys = key_columns_of(entities.columns, given.value(key_columns, "key_columns"),
                          logger, "the training rows")
    contract_version = None
    if contract:
        from knot_prefect.blocks.contract import DataContract

        contract_block = resolve_block(contract, DataContract, parameter="contract")
        contract_version = contract_block.version
        entities = validate(entities, contract_block, on_failure="raise")

    if task is None:
        task = infer_task(entities[target])
        logger.info("task not given: %r inferred from the label %r (%d distinct values). "
                    "Pass task= to choose.", task, target, entities[target].nunique())
    task = check_task(task)
    rows, views = _training_rows(entities, features, timestamp_column,
                                 given.or_default(feature_store, "feature_store", LOCAL_FEATURES))
    train_rows, test_rows = split_by_key(rows, keys, test_fraction)
    drop = [*keys, *([timestamp_column] if timestamp_column else []), "event_timestamp"]
    train_frame = train_rows.drop(columns=[c for c in drop if c in train_rows.columns])
    test_frame = test_rows.drop(columns=[c for c in drop if c in test_rows.columns])
    logger.info("Training a %s model on %d rows, evaluating on %d.", task, len(train_frame),
                len(test_frame))

    cache_key = step_cache_key(
        "train", train_frame,
        {"trainer": trainer, "params": params, "model": model_name, "task": task},
    )
    if train_on:
        from knot_prefect.compute.remote_step import run_step_on

        model_uri = run_step_on(train_on, train, train_fn, train_frame, params,
                                tracking_block, target=target, task=task)
    else:
        model_uri = train.with_options(
            cache_key_fn=lambda *_: cache_key, persist_result=True
        )(train_fn, train_frame, params, tracking_block, target=target, task=task)

    scored_as = evaluation_task(task)
    evaluation = evaluate(model_uri, test_frame, target, scored_as, tracking_block)
    from knot_prefect.tracking.fluent import fluent_store

    # The checks log to the evaluation's run in the block's store (never MLflow's
    # default store, a stray ./mlflow.db in the working folder).
    with tracking_block.session(), fluent_store(tracking_block):
        for spec_check in checks if checks is not None else default_checks(task):
            metric = spec_check["metric"]
            if metric not in evaluation.metrics:
                raise ValueError(
                    f"Check on {metric!r}: the evaluation has no such metric; it has "
                    f"{sorted(evaluation.metrics)}."
                )
            check(
                evaluation.metrics[metric],
                f"{model_name}-{metric}-{spec_check.get('severity', 'warning')}",
                lower=spec_check.get("lower"),
                upper=spec_check.get("upper"),
                equal=spec_check.get("equal"),
                severity=spec_check.get("severity", "warning"),
                mlflow_run_id=evaluation.run_id,
            )

    version = register_model(
        model_uri,
        model_name,
        tracking_block,
        tags={
            "knot.feature_views": views,
            "knot.contract_version": contract_version or "",
            "knot.source_query_hash": source_query_hash(source, entity_params),
            "knot.task": task,
            "knot.target": target,
            "knot.key_columns": ",".join(keys),
            # The Delta version of every table the rows were read from, if any.
            **({"knot.source_versions": versions_text(source_versions) or ""}
               if source_versions else {}),
        },
    )
    profile_location = _store_reference_profile(
        tracking_block, model_name, version.version, model_uri, train_frame, target
    )
    decision = promote(
        model_name,
        version.version,
        alias=alias,
        metric=promotion_metric or DEFAULT_PROMOTION_METRIC[task],
        min_delta=min_delta,
        data=test_frame,
        target=target,
        task=scored_as,
        tracking=tracking_block,
    )
    summary = TrainingSummary(
        entity_rows=len(entities),
        training_rows=len(train_frame),
        test_rows=len(test_frame),
        model_uri=model_uri,
        model_name=model_name,
        model_version=version.version,
        task=task,
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


def _training_rows(
    entities: Any, features: str | list[str] | None, timestamp_column: str | None,
    feature_store: str,
) -> tuple[Any, str]:
    """The rows to train on and the feature views they came from.

    Without ``features`` the rows are the table's own columns; with them, Feast joins
    each row's features as of its ``timestamp_column``.
    """
    if not features:
        return entities, WAREHOUSE_COLUMNS
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.features.references import resolve_features, views_of
    from knot_prefect.lineage.columns import feature_view_versions
    from knot_prefect.tasks import training_set

    store_block = resolve_block(feature_store, FeastFeatureStore, parameter="feature_store")
    if timestamp_column and timestamp_column != "event_timestamp":
        entities = entities.rename(columns={timestamp_column: "event_timestamp"})
    rows = training_set(store_block, entities, features)
    store = store_block.get_store()
    return rows, feature_view_versions(store, views_of(store, resolve_features(store, features)))


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
