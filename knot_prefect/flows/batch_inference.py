"""``batch_inference_flow``: score rows with the model holding an alias, publish with lineage."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from prefect import flow, get_run_logger

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.warehouses.base import StagedPart, Warehouse
    from knot_prefect.lineage.columns import Lineage

from knot_prefect.documents.defaults import (
    DEFAULT_ALIAS,
    LOCAL_FEATURES,
    LOCAL_TRACKING,
    LOCAL_WAREHOUSE,
)
from knot_prefect.flows.batch_inference_partitions import WINDOW_PARAMETERS, backfill
from knot_prefect.flows.dask_runner import scoring_runner, workers_of
from knot_prefect.flows.ray_runner import (
    check_scoring_runner,
    is_ray_task_runner,
    started_ray_runner,
)
from knot_prefect.flows.scoring import (
    PredictionStats,
    batch_violates,
    partitions,
    plan_partitions,
    run_checks,
    score_key_range,
    score_range_in_warehouse,
    scored_stream,
    with_lineage,
)
from knot_prefect.flows.scoring_request import ScoringRequest
from knot_prefect.streaming import chain_handed_on


@flow(name="knot-batch-inference", log_prints=True)
def batch_inference_flow(
    spec: str | None = None,
    entity_sql: str | None = None,
    key_columns: list[str] | None = None,
    model_name: str | None = None,
    output_table: str | None = None,
    features: str | list[str] | None = None,
    feature_source: Literal["historical", "online", "warehouse"] | None = None,
    contract: str | None = None,
    quarantine_table: str | None = None,
    max_bad_fraction: float = 0.05,
    entity_params: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    alias: str = DEFAULT_ALIAS,
    warehouse: str | None = None,
    feature_store: str | None = None,
    tracking: str | None = None,
    batch_rows: int = 50_000,
    prediction_bounds: list[float] | None = None,
    stream: bool = False,
    dask_address: str | None = None,
    dask_workers: int = 2,
    partition_rows: int | None = None,
    spark: str | None = None,
    runner: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    partition: str | timedelta | None = None,
    refresh: bool = False,
) -> Any:
    """Score entity rows and upsert the predictions, each row carrying its lineage.

    Steps: read the rows to score -> validate them (failing rows are quarantined, the
    run fails only above ``max_bad_fraction``) -> features from Feast, historical as of
    ``as_of`` or online (or columns of the rows themselves) -> load the model holding
    ``alias`` -> check its inputs match the features (names missing/extra columns) ->
    predict in batches -> checks on the predictions (no nulls; within
    ``prediction_bounds``) -> upsert by key with the lineage columns (model
    name/version/alias, feature views with versions, contract version, source query
    hash, flow-run id, scored-at time).

    Re-running (a retry or a new run) never duplicates a key: publishing is an upsert.
    In memory (the default) it is one upsert inside one transaction.

    Next to the data: when the model's inputs come from the warehouse
    (``feature_source="warehouse"``) and no contract is set, the flow process only
    splits the first key column into ranges (``partition_rows`` rows each); each range
    is read from the warehouse, scored and staged back there by the process scoring
    it, and the flow commits all ranges at once after the prediction checks (one
    transaction on SQL warehouses, one manifest switch on a lake). Memory then depends
    on ``batch_rows``, not on the input. This runs on the Dask workers when each of
    them may use the warehouse (not a DuckDB or SQLite file, which one process holds),
    and in the flow process unless ``stream`` is set.

    Scale-out: with ``dask_address`` (or when the flow runs with
    ``batch_inference_flow.with_options(task_runner=DaskTaskRunner(...))``) the rows are
    scored in parallel on Dask workers: next to the data, each worker reads and stages
    its own ranges, and no row passes through the flow process; otherwise the flow
    process reads, validates and gets features, and partitions of ``batch_rows`` rows
    are shipped to the workers to be scored.

    With ``stream=True`` the rows are read with ``Warehouse.read_batches`` and every
    batch is validated, given its features and scored on its own, so the flow process
    holds only a few batches whatever the input size. Every scored batch is staged and
    all are published at the end in one commit. The contract's bad fraction and
    uniqueness hold per batch, and a batch failing a prediction check stops the run
    before it is staged.

    On every warehouse and every path, a failed run publishes nothing.

    Spark: with ``spark`` (a SparkEngine block document, or the spec's ``spark``) the
    rows are read by Spark (a local ParquetLake table's files directly, any other
    warehouse range by range through knot), the model is applied with MLflow's
    ``spark_udf``, and each Spark task stages its predictions with the lineage
    columns; the flow commits every part at once (see docs/spark.md). With Feast
    features or a contract, the flow process reads and prepares the rows first and
    hands them to Spark as Arrow.

    Predictions have one shape per task: ``prediction`` (the value, or the label of a
    classifier), ``probability`` (binary: of the positive class) or one
    ``probability_<class>`` per class (multiclass); see docs/flows.md.

    Every parameter left empty comes from the model spec when one is given.

    Args:
        spec: ModelSpec block document name, or the path of a model spec YAML file.
        entity_sql: Table name or query returning the rows to score: their keys and,
            without a feature store, the model's input columns (required; the spec's
            ``scoring_source`` or ``source``).
        key_columns: Columns identifying a row; when empty, the single column ending
            in ``_id`` (logged; several or none is an error).
        model_name: Registered model name (required).
        output_table: Table receiving the predictions (required).
        features: Feast feature service name or ``view:feature`` references; empty
            when the rows carry the model's inputs themselves.
        feature_source: ``historical`` (offline store, point in time), ``online``, or
            ``warehouse`` (``entity_sql`` already returns the model's input columns;
            the feature store is not used). Default: ``historical`` with
            ``features``, ``warehouse`` without.
        contract: DataContract block document for the rows to score (none: no check).
        quarantine_table: Where rows failing the contract go (default:
            ``<output_table>_quarantine``).
        max_bad_fraction: Largest tolerated share of quarantined rows.
        entity_params: Values bound to ``:name`` placeholders of ``entity_sql``.
        as_of: Point in time of historical features (default: now, UTC).
        alias: The alias whose model scores.
        warehouse: Warehouse block document for the rows to score and the output
            (default ``local-warehouse``).
        feature_store: FeastFeatureStore block document (default ``local-features``).
        tracking: MLflowTracking block document (default ``local-mlflow``).
        batch_rows: Rows per call to the model, per streamed batch and per partition
            shipped to Dask.
        prediction_bounds: ``[lower, upper]`` every prediction must respect (error check).
        stream: Read and score batch by batch, publish once (inputs larger than memory).
        dask_address: ``"tcp://HOST:PORT"`` of a running Dask scheduler, or ``"local"``
            for a temporary local cluster; None scores in the flow process unless the
            flow's task runner is a ``DaskTaskRunner``.
        dask_workers: Worker processes of the temporary local cluster.
        partition_rows: Rows per partition when scoring next to the data (default: a
            multiple of the worker count of partitions of at most 4M rows).
        spark: SparkEngine block document to score on (Spark reads, scores and stages
            the rows; the flow commits once).
        runner: ``"ray"`` for a temporary local Ray (``dask_workers`` CPUs) or
            ``"ray://HOST:PORT"`` of a Ray cluster: partitions are Ray tasks
            (prefect-ray's ``RayTaskRunner``), next to the data as on Dask.
        start: Start of a backfill window (with ``partition``): each partition's
            rows, selected by ``:start`` and ``:end`` in ``entity_sql``, are scored
            and published in a task run of their own; a re-run skips the partitions
            done (see :mod:`knot_prefect.flows.batch_inference_partitions`).
        end: End of the backfill window (default: now).
        partition: Partition size of a backfill, e.g. ``"1d"``.
        refresh: In a backfill, score the partitions already done again too.

    Returns:
        A summary dict (a "completed with warnings" state when a warning fired).

    Examples:
        Score on an existing Dask scheduler, streaming from and to the warehouse:

        >>> batch_inference_flow(  # doctest: +SKIP
        ...     spec="loan-default", dask_address="tcp://scheduler:8786", stream=True,
        ...     batch_rows=200_000)
    """
    parameters = dict(locals())
    if start is not None or partition is not None:
        return backfill(score_and_publish, parameters)
    return score_and_publish(ScoringRequest(**{
        name: value for name, value in parameters.items() if name not in WINDOW_PARAMETERS}))


def score_and_publish(request: ScoringRequest) -> Any:
    """``batch_inference_flow``'s scoring of one set of rows, as a plain function.

    ``request`` holds the parameters of :func:`batch_inference_flow` but the backfill
    window (``start``, ``end``, ``partition``, ``refresh``), with the same meaning. The flow
    calls it for an unpartitioned run; a backfill calls it once per partition inside
    that partition's task run. It runs inside a flow run: it logs to the run,
    publishes artifacts and records the flow-run id in the lineage.

    Returns:
        The run's summary dict (a "completed with warnings" state when a warning fired).
    """
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.flows._parameters import EXAMPLES, MissingParameterError, settle
    from knot_prefect.flows._support import publish_summary
    from knot_prefect.lineage.columns import Lineage, source_query_hash
    from knot_prefect.lineage.versions import pin_source_versions, versions_text
    from knot_prefect.tasks import finish_with_warnings, load_model

    logger = get_run_logger()
    given = settle("batch_inference_flow", request.spec)
    entity_sql = given.required(
        request.entity_sql if request.entity_sql is not None else (
            given.spec.rows_to_score if given.spec is not None else None),
        "entity_sql", "source", "the table or query of the rows to score")
    model_name = given.required(request.model_name, "model_name", "model_name",
                                "the registered model name")
    output_table = given.required(request.output_table, "output_table", "output_table",
                                  "the table receiving the predictions")
    key_columns = given.value(request.key_columns, "key_columns")
    features = given.value(request.features, "features")
    contract = given.value(request.contract, "scoring_contract")
    feature_source = request.feature_source or ("historical" if features else "warehouse")
    if feature_source != "warehouse" and not features:
        raise MissingParameterError(
            f"batch_inference_flow needs features= with feature_source={feature_source!r}: "
            "the Feast feature service or 'view:feature' references to read. Example: "
            f"{EXAMPLES['batch_inference_flow']}."
        )
    quarantine_table = request.quarantine_table or f"{output_table}_quarantine"
    warehouse_block = resolve_block(
        given.or_default(request.warehouse, "warehouse", LOCAL_WAREHOUSE), Warehouse,
        parameter="warehouse")
    # Every read of the rows to score sees the versions recorded in the lineage.
    warehouse_block, source_versions = pin_source_versions(warehouse_block, entity_sql,
                                                           request.entity_params)
    tracking_block = resolve_block(given.or_default(request.tracking, "tracking", LOCAL_TRACKING),
                                   MLflowTracking, parameter="tracking")
    feature_store = given.or_default(request.feature_store, "feature_store", LOCAL_FEATURES)
    scored_at = datetime.now(UTC)
    as_of = request.as_of or scored_at
    inputs = _FeatureInputs(warehouse_block, feature_store, features, feature_source,
                            contract, quarantine_table, request.max_bad_fraction, as_of,
                            per_batch=request.stream)

    def model_and_lineage() -> tuple[Any, Lineage]:
        model = load_model(model_name, request.alias, tracking_block)
        return model, Lineage(
            model_name=model.name,
            model_version=model.version,
            model_alias=request.alias,
            feature_views=inputs.views,
            contract_version=inputs.contract_version,
            source_query_hash=source_query_hash(entity_sql, request.entity_params),
            flow_run_id=_flow_run_id(),
            features_as_of=as_of if feature_source == "historical" else scored_at,
            scored_at=scored_at,
            source_versions=versions_text(source_versions),
        )

    spark = given.value(request.spark, "spark")
    runner, dask_address, dask_workers = request.runner, request.dask_address, request.dask_workers
    check_scoring_runner(runner, spark, dask_address)
    with (started_ray_runner(runner, dask_workers) if runner else
          scoring_runner(None if spark else dask_address, dask_workers)) as task_runner:
        job = _ScoringJob(warehouse_block, task_runner, inputs, entity_sql,
                          request.entity_params, key_columns, output_table, request.batch_rows,
                          request.partition_rows, request.prediction_bounds, model_and_lineage)
        # Next to the data when the warehouse holds the model's inputs: on Dask workers
        # where each of them may read and stage there, else in the flow process
        # unless batches were asked for.
        on_workers = task_runner is not None and warehouse_block.shared_by_processes()
        next_to_data = (feature_source == "warehouse" and inputs.contract_block is None
                        and (on_workers if task_runner is not None else not request.stream))
        if spark is not None:
            outcome = _score_on_spark(job, spark, dask_address, tracking_block)
        elif next_to_data:
            outcome = _score_key_ranges(job)
        elif request.stream:
            outcome = _score_streamed(job)
        else:
            outcome = _score_in_memory(job)
    model, rows_published = outcome.model, outcome.rows_published
    logger.info("Published %d predictions to %s.", rows_published, output_table)

    summary = {
        "rows_read": outcome.rows_read,
        "rows_quarantined": outcome.rows_quarantined,
        "rows_scored": outcome.rows_scored,
        "rows_published": rows_published,
        "output_table": output_table,
        "model": f"{model.name} v{model.version} (@{request.alias})",
        "feature_views": inputs.views,
        "feature_source": feature_source,
        "contract_version": inputs.contract_version,
    }
    publish_summary(
        "batch-inference-summary",
        "Batch inference run summary",
        [(k.replace("_", " "), v) for k, v in summary.items()],
        notes=f"Lineage columns on every row; ask `knot lineage {output_table} --key VALUE`.",
    )
    return finish_with_warnings(summary)


@dataclass(frozen=True)
class _ScoringJob:
    """What every scoring strategy of ``batch_inference_flow`` works from."""

    warehouse: Warehouse
    runner: Any
    inputs: _FeatureInputs
    entity_sql: str
    entity_params: dict[str, Any] | None
    key_columns: list[str] | None
    output_table: str
    batch_rows: int
    partition_rows: int | None
    prediction_bounds: list[float] | None
    model_and_lineage: Callable[[], tuple[Any, Lineage]]


@dataclass(frozen=True)
class _Outcome:
    """What a scoring strategy did, for the run's summary."""

    model: Any
    rows_read: int
    rows_quarantined: int
    rows_scored: int
    rows_published: int


def _score_key_ranges(job: _ScoringJob) -> _Outcome:
    """Score next to the data: no row passes through the flow process.

    The flow process plans ranges of the first key column; each Dask worker (or, with
    no Dask runner, the flow process itself, one range after another) reads a range
    from the warehouse, scores it and stages its predictions there; the flow commits
    all staged parts at once after the checks pass. A failed run publishes nothing, a
    re-run upserts the same keys, and memory depends on ``batch_rows``.
    """
    from knot_prefect.tasks import check

    warehouse, runner = job.warehouse, job.runner
    sql = _rows_query(warehouse, job.entity_sql).strip().rstrip(";")
    probe = warehouse.read_arrow(f"SELECT * FROM ({sql}) AS q LIMIT 0", job.entity_params)
    keys = _key_columns(probe.to_pandas(), job.key_columns)
    total, plan = plan_partitions(warehouse, sql, job.entity_params, keys[0],
                                  workers_of(runner), job.partition_rows)
    model, lineage = job.model_and_lineage()
    stage_id = warehouse.new_stage_id()
    arguments = [
        {"warehouse": warehouse, "entity_sql": sql, "params": job.entity_params,
         "partition": part, "model": model, "keys": keys, "batch_rows": job.batch_rows,
         "lineage": lineage, "output_table": job.output_table, "stage_id": stage_id}
        for part in plan
    ]
    futures = [] if runner is None else [
        runner.submit(score_key_range, parameters=values) for values in arguments
    ]
    # In the flow process the partitions run one after another as plain functions.
    results = (future.result() for future in futures) if futures else (
        score_range_in_warehouse(**values) for values in arguments)
    staged: list[StagedPart] = []
    stats = PredictionStats()
    try:
        for part, part_stats in results:
            staged.append(part)
            stats.merge(part_stats)
        run_checks(check, stats, job.output_table, job.prediction_bounds)
        # Ranges of the key are disjoint and each part checked its own keys.
        published = warehouse.commit_staged(job.output_table, staged, keys,
                                            evolve=lineage.evolvable_columns,
                                            check_unique=False)
    except BaseException:
        for future in futures[len(staged):]:
            with contextlib.suppress(BaseException):
                staged.append(future.result()[0])
        warehouse.discard_staged(staged)
        raise
    engine = "Ray" if is_ray_task_runner(runner) else "Dask"
    where = f"on {workers_of(runner)} {engine} worker(s)" if futures else "in the flow process"
    get_run_logger().info(
        "Scored %d rows in %d partition(s) %s, each read from and staged in the warehouse "
        "by the process scoring it.", total, len(plan), where)
    return _Outcome(model, total, 0, stats.rows, published)


def _score_on_spark(job: _ScoringJob, engine_name: str, dask_address: str | None,
                    tracking: Any) -> _Outcome:
    """Score on Spark: tasks read, score and stage; the flow checks and commits once.

    With Feast features or a contract the flow process reads the rows and prepares
    them as the in-memory path does (quarantine, point-in-time features); Spark scores
    and stages the prepared rows.
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.spark_engine import SparkEngine
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.flows.spark_scoring import (
        SparkScoring,
        prepared_frame,
        require_shared_warehouse,
        rows_frame,
        score_and_stage,
    )
    from knot_prefect.tasks import check, extract

    if dask_address is not None:
        raise ConfigurationError(
            "batch_inference_flow scores on one engine: pass spark= or dask_address=, "
            "not both.")
    engine = resolve_block(engine_name, SparkEngine, parameter="spark")
    prepared = job.inputs.source != "warehouse" or job.inputs.contract_block is not None
    if prepared and engine.is_databricks():
        raise ConfigurationError(
            "A Databricks job reads the model's inputs as columns of the rows to score: "
            "use feature_source='warehouse' and no contract there (validate the rows with "
            "data_quality_flow first), or a SparkEngine whose master is local[N], "
            "spark://, yarn, k8s:// or sc:// for Feast features and contracts.")
    warehouse = job.warehouse
    if prepared:  # before any row is read or quarantined
        require_shared_warehouse(warehouse)
    sql = _rows_query(warehouse, job.entity_sql).strip().rstrip(";")
    entities = (extract(warehouse, job.entity_sql, job.entity_params) if prepared else
                warehouse.read_arrow(f"SELECT * FROM ({sql}) AS q LIMIT 0",
                                     job.entity_params).to_pandas())
    keys = _key_columns(entities, job.key_columns)
    frame = job.inputs.prepare(entities, keys) if prepared else entities
    model, lineage = job.model_and_lineage()
    if engine.is_databricks():
        from knot_prefect.flows.databricks_scoring import score_on_databricks

        scoring: Any = score_on_databricks(engine, warehouse, tracking, model, lineage,
                                           job.entity_sql, sql, job.entity_params, keys,
                                           job.output_table, job.partition_rows)
    else:
        with engine.session() as session:
            rows = (prepared_frame(session, frame) if prepared else
                    rows_frame(session, warehouse, job.entity_sql, sql, job.entity_params,
                               keys, job.partition_rows))
            scoring = score_and_stage(session, rows, warehouse, model, keys, lineage,
                                      job.output_table, tracking)
    try:
        run_checks(check, scoring.stats, job.output_table, job.prediction_bounds)
        # Spark partitioned the rows by key and each task checked its own keys.
        published = warehouse.commit_staged(job.output_table, scoring.parts, keys,
                                            evolve=lineage.evolvable_columns,
                                            check_unique=not isinstance(scoring, SparkScoring))
    except BaseException:
        warehouse.discard_staged(scoring.parts)
        raise
    get_run_logger().info(
        "Scored %d rows on Spark (%s) in %d part(s), each staged by its Spark task.",
        scoring.rows_read, engine.master, len(scoring.parts))
    rows_read = len(entities) if prepared else scoring.rows_read
    return _Outcome(model, rows_read, rows_read - scoring.rows_read, scoring.stats.rows,
                    published)


def _score_streamed(job: _ScoringJob) -> _Outcome:
    """Read, prepare and score batch by batch; stage them all, commit once.

    The flow process holds a few batches whatever the input size. Every scored batch
    is streamed into one staged part; a batch breaking a prediction check stops the
    run before it is staged, and a failed run publishes nothing.
    """
    import pandas as pd

    from knot_prefect.tasks import check

    warehouse = job.warehouse
    sql = _rows_query(warehouse, job.entity_sql)

    def read_frames() -> Iterator[pd.DataFrame]:
        for batch in warehouse.read_batches(sql, job.entity_params, job.batch_rows):
            frame = batch.to_pandas()
            del batch
            yield frame
            del frame

    batches = read_frames()
    first = next(batches, None)
    keys = _key_columns(first if first is not None else pd.DataFrame(), job.key_columns)
    # Each batch is dropped once handed on (the first too), so that the flow process
    # holds the batches in flight only, not the first one nor the one before.
    head = [first] if first is not None else []
    del first
    counts = {"read": 0, "quarantined": 0}

    def prepared() -> Iterator[pd.DataFrame]:
        for entities in chain_handed_on(head, batches):
            counts["read"] += len(entities)
            frame = job.inputs.prepare(entities, keys)
            counts["quarantined"] += len(entities) - len(frame)
            del entities
            if len(frame):
                yield frame
            del frame

    model, lineage = job.model_and_lineage()
    stats = PredictionStats()
    window = 2 * workers_of(job.runner)

    def checked_outputs() -> Iterator[Any]:
        for scored in scored_stream(job.runner, prepared(), model, keys, job.batch_rows,
                                    window):
            columns = [c for c in scored.columns if c not in keys]
            stats.add(scored, columns)
            if batch_violates(scored, columns, job.prediction_bounds):
                run_checks(check, stats, job.output_table, job.prediction_bounds)  # raises
            yield with_lineage(scored, lineage)
            del scored

    stage_id = warehouse.new_stage_id()
    staged = [warehouse.stage(checked_outputs(), job.output_table, stage_id)]
    try:
        run_checks(check, stats, job.output_table, job.prediction_bounds)
        published = warehouse.commit_staged(job.output_table, staged, keys,
                                            evolve=lineage.evolvable_columns)
    except BaseException:
        warehouse.discard_staged(staged)
        raise
    return _Outcome(model, counts["read"], counts["quarantined"], stats.rows, published)


def _score_in_memory(job: _ScoringJob) -> _Outcome:
    """Read all rows, score them (in partitions on Dask workers), publish one upsert."""
    import pandas as pd

    from knot_prefect.tasks import check, extract, predict, publish

    entities = extract(job.warehouse, job.entity_sql, job.entity_params)
    keys = _key_columns(entities, job.key_columns)
    frame = job.inputs.prepare(entities, keys)
    model, lineage = job.model_and_lineage()
    if job.runner is None:
        predictions = predict(model, frame, batch_rows=job.batch_rows)
    else:
        parts = partitions(frame, job.batch_rows)
        pieces = list(scored_stream(job.runner, parts, model, keys, job.batch_rows,
                                    in_flight=len(parts)))
        predictions = pd.concat(pieces).drop(columns=keys)
        get_run_logger().info("Scored %d partitions on %d Dask workers.", len(parts),
                              workers_of(job.runner))
    stats = PredictionStats()
    stats.add(predictions, list(predictions.columns))
    run_checks(check, stats, job.output_table, job.prediction_bounds)
    output = with_lineage(frame[keys].join(predictions), lineage)
    result = publish(output, job.warehouse, job.output_table, mode="upsert", keys=keys,
                     evolve=lineage.evolvable_columns)
    return _Outcome(model, len(entities), len(entities) - len(frame), output.num_rows,
                    result.rows)


def _rows_query(warehouse: Warehouse, entity_sql: str) -> str:
    """``entity_sql`` as a query: a table name (as ``extract`` reads one) is selected whole."""
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.tasks.warehouse import is_spaced_table_name, is_table_name

    if is_table_name(entity_sql) or is_spaced_table_name(warehouse, entity_sql):
        name = TableName.parse(entity_sql.strip())
        return f"SELECT * FROM {name.quoted(warehouse.identifier_quote)}"
    return entity_sql


def _key_columns(entities: pd.DataFrame, key_columns: list[str] | None) -> list[str]:
    from knot_prefect.flows._parameters import key_columns_of

    return key_columns_of(entities.columns, key_columns, get_run_logger(), "the rows to score")


class _FeatureInputs:
    """Turns rows to score into model inputs: contract, then features (per batch)."""

    def __init__(self, warehouse: Any, feature_store: str, features: str | list[str] | None,
                 source: str, contract: str | None, quarantine_table: str,
                 max_bad_fraction: float, as_of: datetime, per_batch: bool = False) -> None:
        from knot_prefect.blocks.resolve import resolve_block

        if source not in ("historical", "online", "warehouse"):
            raise ValueError(
                f"feature_source must be 'historical', 'online' or 'warehouse', not "
                f"{source!r}."
            )
        self.warehouse, self.source = warehouse, source
        self.features: str | list[str] = features or []  # given whenever a store is read
        self.quarantine_table, self.max_bad_fraction = quarantine_table, max_bad_fraction
        self.as_of, self.per_batch = as_of, per_batch
        self.contract_block: Any = None
        self.contract_version: str | None = None
        if contract:
            from knot_prefect.blocks.contract import DataContract

            self.contract_block = resolve_block(contract, DataContract, parameter="contract")
            self.contract_version = self.contract_block.version
        self.store_block: Any = None
        self.views = "warehouse columns"
        if source != "warehouse":
            from knot_prefect.blocks.feast_store import FeastFeatureStore
            from knot_prefect.features.references import resolve_features, views_of
            from knot_prefect.lineage.columns import feature_view_versions

            self.store_block = resolve_block(feature_store, FeastFeatureStore,
                                             parameter="feature_store")
            store = self.store_block.get_store()
            references = resolve_features(store, self.features)
            self.views = feature_view_versions(store, views_of(store, references))

    def prepare(self, entities: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        """Valid rows (failing ones quarantined) with their features."""
        import pandas as pd

        from knot_prefect.tasks import online_features, training_set, validate
        from knot_prefect.tasks.features import get_online_features, get_training_set

        # Plain functions per streamed batch (their artifacts and logs still attach to
        # the flow run): a task call's result stays referenced by the flow run for
        # dependency tracking, which would keep every batch in memory.
        rows = entities
        if self.contract_block is not None:
            check_rows = _plain_validate if self.per_batch else validate
            rows = check_rows(entities, self.contract_block, on_failure="quarantine",
                              max_bad_fraction=self.max_bad_fraction,
                              quarantine=(self.warehouse, self.quarantine_table))
        if self.source == "warehouse" or not len(rows):
            return rows
        if self.source == "online":
            online_of = get_online_features if self.per_batch else online_features
            online = online_of(self.store_block, rows[keys], self.features)
            return rows.merge(online, on=keys, how="left")
        training_set_of = get_training_set if self.per_batch else training_set
        return training_set_of(self.store_block,
                               rows.assign(event_timestamp=pd.Timestamp(self.as_of)),
                               self.features)


def _plain_validate(entities: pd.DataFrame, contract: Any, **options: Any) -> pd.DataFrame:
    """``validate`` as a plain function: the rows to go on with, without a task run."""
    from knot_prefect.contracts.tasks import validate_frame

    return validate_frame(entities, contract, **options)[0]


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None
