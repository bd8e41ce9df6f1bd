"""Scoring on Spark for ``batch_inference_flow``: executors score and stage, the flow commits.

The rows to score become a Spark DataFrame: the data files of a local ParquetLake table
are read by Spark itself; any other warehouse is read through knot, each Spark task
reading one range of the first key column (:func:`~knot_prefect.flows.scoring.plan_partitions`)
with ``Warehouse.read_batches``. Rows given Feast features or checked by a contract
are prepared in the flow process, as on every other path, and handed to Spark as
Arrow. The model holding the alias is applied with MLflow's
``spark_udf`` (loaded once per executor Python worker, its signature's input columns
passed by name). The rows are first spread over the tasks by a hash of the key
columns: every task gets about the same share, and each key lands in one task only,
so each task's own key check covers the whole write. Each Spark task shapes its
predictions as every other path does, adds the lineage columns and stages its rows in
the warehouse (``Warehouse.stage``); the flow process gathers the staged parts, runs
the prediction checks and publishes them with one ``commit_staged``, which reads no
row again: the flow process's memory does not grow with the rows. A failed run
publishes nothing: the parts already staged are discarded.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError, KnotError
from knot_prefect.flows.scoring import PredictionStats, plan_partitions, with_lineage

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from knot_prefect.blocks.warehouses.base import StagedPart, Warehouse
    from knot_prefect.lineage.columns import Lineage

RAW = "_knot_model_output"


@dataclass(frozen=True)
class SparkScoring:
    """What one scoring run on Spark did.

    Every key is in one part only (the rows were partitioned by a hash of the keys),
    and each part checked its own keys when it was staged.
    """

    rows_read: int
    stats: PredictionStats
    parts: list[StagedPart]
    spark_partitions: int


def rows_frame(
    spark: SparkSession,
    warehouse: Warehouse,
    entity_sql: str,
    query: str,
    params: dict[str, Any] | None,
    keys: list[str],
    partition_rows: int | None,
) -> DataFrame:
    """The rows to score as a Spark DataFrame.

    A table of a local ParquetLake is read by Spark from the table's current data
    files (the lake's manifest lists them); otherwise each Spark task reads one range
    of ``keys[0]`` through the warehouse.

    Args:
        spark: The session.
        warehouse: Where the rows are.
        entity_sql: A table name or a query, as the flow was given it.
        query: ``entity_sql`` as a query (a table name selected whole).
        params: Values bound to the query's placeholders.
        keys: The key columns (the first one splits the ranges).
        partition_rows: Rows per range (default: see ``plan_partitions``).
    """
    files = _lake_files(warehouse, entity_sql)
    if files is not None:
        return spark.read.option("mergeSchema", "true").parquet(*files)
    return _ranges_read_by_tasks(spark, warehouse, query, params, keys, partition_rows)


def prepared_frame(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """Rows prepared in the flow process (contract checked, Feast features joined) for Spark.

    The frame reaches Spark as an Arrow table (Spark 4; a pandas frame on Spark 3.5),
    in at most one partition per task slot, each scored and staged by a Spark task.

    Args:
        spark: The session.
        frame: The rows to score with the model's inputs, as ``_FeatureInputs.prepare``
            returns them.
    """
    import pyarrow as pa
    import pyspark

    if int(pyspark.__version__.split(".")[0]) < 4:
        rows = spark.createDataFrame(frame)
    else:
        rows = spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
    # Spark makes one partition per Arrow batch (10,000 rows by default); one per
    # task slot before the rows are spread by key (``spread_by_key``).
    return rows.coalesce(_default_parallelism(spark))


def _lake_files(warehouse: Warehouse, entity_sql: str) -> list[str] | None:
    """The data files of a local lake table named by ``entity_sql`` (None otherwise)."""
    from knot_prefect.blocks.warehouses.identifiers import TableName
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.tasks.warehouse import is_table_name

    if not isinstance(warehouse, ParquetLake) or not is_table_name(entity_sql):
        return None
    from knot_prefect.blocks.warehouses.lake.manifest import manifest_or_raise

    storage = warehouse._storage()
    if not storage.is_local:
        return None  # object stores need Hadoop connectors Spark may lack: read via knot
    table = TableName.parse(entity_sql.strip())
    entries = manifest_or_raise(storage, table)["files"]
    return [storage.table_path(table, entry["path"]) for entry in entries] or None


def _ranges_read_by_tasks(
    spark: SparkSession,
    warehouse: Warehouse,
    entity_sql: str,
    params: dict[str, Any] | None,
    keys: list[str],
    partition_rows: int | None,
) -> DataFrame:
    from pyspark.sql.pandas.types import from_arrow_schema

    require_shared_warehouse(warehouse)
    sql = entity_sql.strip().rstrip(";")
    schema = warehouse.read_arrow(f"SELECT * FROM ({sql}) AS q LIMIT 0", params).schema
    workers = max(int(spark.conf.get("spark.default.parallelism", "0") or 0),
                  _default_parallelism(spark))
    _, plan = plan_partitions(warehouse, sql, params, keys[0], workers, partition_rows)
    by_number = {part.number: part for part in plan}

    def read_ranges(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for number in batch.column(0).to_pylist():
                part_sql, values = by_number[number].sql(sql, keys[0],
                                                         warehouse.identifier_quote)
                for rows in warehouse.read_batches(part_sql, {**(params or {}), **values}):
                    yield rows.cast(schema) if rows.schema != schema else rows

    numbers = spark.range(0, len(plan), 1, len(plan))
    return numbers.mapInArrow(read_ranges, from_arrow_schema(schema))


def require_shared_warehouse(warehouse: Warehouse) -> None:
    """Refuse a warehouse that Spark tasks cannot stage in (one process holds it).

    Raises:
        ConfigurationError: For a DuckDB or SQLite file, naming the warehouses to use.
    """
    if not warehouse.shared_by_processes():
        raise ConfigurationError(
            f"Spark tasks read the rows to score and stage predictions in the warehouse, "
            f"and {type(warehouse).__name__} is held by one process at a time. Score on "
            "Spark from a ParquetLake or a server warehouse (PostgreSQL, Snowflake, "
            "BigQuery), or without spark= on this warehouse."
        )


def spread_by_key(spark: SparkSession, rows: DataFrame, keys: list[str]) -> DataFrame:
    """The rows in partitions by a hash of the key columns, a multiple of the task slots.

    A table of few Parquet files (or one) reaches Spark in partitions of unequal
    size, some empty, which leaves task slots idle; hashing the keys gives every
    partition about the same rows, and puts every row of a key in one partition,
    so the keys each task checks when it stages cover the whole write and the
    commit needs not read the staged rows again.

    Args:
        spark: The session.
        rows: The rows to score.
        keys: The key columns.
    """
    slots = _default_parallelism(spark)
    try:
        given = rows.rdd.getNumPartitions()
    except Exception:  # Spark Connect has no RDDs
        given = slots
    partitions = slots * max(1, -(-given // slots))
    return rows.repartition(partitions, *keys)


def _default_parallelism(spark: SparkSession) -> int:
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return 2


def score_and_stage(
    spark: SparkSession,
    rows: DataFrame,
    warehouse: Warehouse,
    model: Any,
    keys: list[str],
    lineage: Lineage,
    output_table: str,
    tracking: Any,
) -> SparkScoring:
    """Apply the model with ``mlflow.pyfunc.spark_udf`` and stage every Spark partition.

    The rows are spread by key first (:func:`spread_by_key`). Each task stages its
    partition as part ``partitionId`` of one staged write, checking its keys (a retried
    task replaces its part). The parts are returned for the flow to commit.

    Raises:
        ConfigurationError: When the rows lack the model's input columns.
    """
    import pyspark.sql.functions as F

    from knot_prefect.tasks.prediction_shape import model_classes

    inputs = _input_columns(model, rows.columns, keys)
    classes = model_classes(model)
    udf = _model_udf(spark, model, rows, inputs, tracking)
    rows = spread_by_key(spark, rows, keys)
    scored = rows.select(*[F.col(k) for k in keys], udf(*[F.col(c) for c in inputs]).alias(RAW))
    stage_id = warehouse.new_stage_id()
    collector = _PartCollector(spark)

    def stage_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        from knot_prefect.flows.worker_allocator import tune_worker_allocator

        tune_worker_allocator()
        stats = PredictionStats()
        context = TaskContext.get()
        number = context.partitionId() if context is not None else 0
        read = [0]

        def with_predictions() -> Iterator[pa.Table]:
            for batch in batches:
                read[0] += batch.num_rows
                predictions = _shaped(batch, classes)
                stats.add(predictions, list(predictions.columns))
                frame = batch.select(keys).to_pandas()
                yield with_lineage(frame.join(predictions), lineage)

        try:
            part = warehouse.stage(with_predictions(), output_table, stage_id, number,
                                   unique_keys=keys)
        except KnotError as error:
            # Bad rows or a bad model: retrying cannot help. Reported as the task's
            # result, so the job ends normally and every other task's part comes back
            # to be discarded (a failed job would cancel tasks that may have staged).
            for _ in batches:
                pass
            yield pa.RecordBatch.from_pydict({"part": [_encode(_TaskResult(error=error))]})
            return
        encoded = _encode(_TaskResult(part, stats, read[0]))
        collector.add(encoded)
        yield pa.RecordBatch.from_pydict({"part": [encoded]})

    staged = scored.mapInArrow(stage_partition, "part string")
    try:
        results: list[_TaskResult] = [_decode(row["part"]) for row in staged.collect()]
    except BaseException:
        warehouse.discard_staged(collector.parts())
        raise
    parts = [result.part for result in results if result.part is not None]
    errors = [result.error for result in results if result.error is not None]
    if errors:
        warehouse.discard_staged(parts)
        raise errors[0]
    total = PredictionStats()
    for result in results:
        total.merge(result.stats)
    return SparkScoring(rows_read=sum(result.rows for result in results), stats=total,
                        parts=parts, spark_partitions=len(results))


@dataclass(frozen=True)
class _TaskResult:
    """What one Spark task sends back: its staged part and statistics, or its error."""

    part: StagedPart | None = None
    stats: PredictionStats = field(default_factory=PredictionStats)
    rows: int = 0
    error: KnotError | None = None


def _input_columns(model: Any, columns: list[str], keys: list[str]) -> list[str]:
    """The model's input columns by name (its signature), checked against the rows."""
    from knot_prefect.tracking.scoring import feature_names_of

    names = feature_names_of(getattr(model, "model", model))
    if not names:
        return [c for c in columns if c not in keys]
    missing = [name for name in names if name not in columns]
    if missing:
        extra = [c for c in columns if c not in names]
        raise ConfigurationError(
            f"The rows to score lack the model's input columns {missing} (the model "
            f"expects {names}; columns not used by the model: {extra}). Add the "
            "missing features before scoring."
        )
    return list(names)


def _model_udf(spark: SparkSession, model: Any, rows: DataFrame, inputs: list[str],
               tracking: Any) -> Any:
    """``spark_udf`` of the pinned model version, its result type from one scored row."""
    import mlflow
    import numpy as np

    from knot_prefect.tracking.fluent import fluent_store

    sample = rows.select(*inputs).limit(1).toPandas()
    output: Any = np.asarray(model.predict(sample)) if len(sample) else np.zeros((0,))
    if output.ndim == 2 and output.shape[1] > 1:
        result_type = "array<double>"
    elif output.dtype.kind in "iufb" or not len(sample):
        result_type = "double"
    else:
        result_type = "string"
    with tracking.session(), fluent_store(tracking):
        return mlflow.pyfunc.spark_udf(spark, model.uri, result_type=result_type,
                                       env_manager="local")


def _shaped(batch: pa.RecordBatch, classes: list[Any] | None) -> Any:
    """One batch's model output in knot's prediction shape (as every other path)."""
    import pyarrow as pa

    from knot_prefect.tasks.prediction_shape import shape_predictions

    raw = batch.column(RAW)
    if pa.types.is_list(raw.type):  # class probabilities: one array per row
        output = _probability_matrix(raw)
    else:
        output = raw.to_numpy(zero_copy_only=False)
    return shape_predictions(output, batch.num_rows, classes)


def _probability_matrix(raw: pa.ListArray) -> Any:
    """Rows of class probabilities as one 2-D array, without a Python object per row.

    Every row of a classifier's output has one value per class: the flat values are
    reshaped. Rows of unequal length or null rows (not a classifier's output) go
    through Python lists.
    """
    import numpy as np
    import pyarrow.compute as pc

    lengths = pc.list_value_length(raw)
    width = pc.min_max(lengths)
    if raw.null_count == 0 and len(raw) and width["min"].as_py() == width["max"].as_py():
        flat = raw.flatten().to_numpy(zero_copy_only=False).astype("float64", copy=False)
        return flat.reshape(len(raw), width["min"].as_py())
    return np.asarray(raw.to_pylist(), dtype="float64")


def _encode(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


def _decode(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))


class _PartCollector:
    """The parts staged by the Spark tasks that finished, even when the job fails.

    An accumulator: Spark sends a task's updates to the driver when the task
    succeeds, so the parts of a failed job can be discarded. Spark Connect has no
    accumulators; there the parts of a failed job stay until the warehouse drops
    stale stages (a lake's ``vacuum``, a SQL warehouse's next commit after a day).
    """

    def __init__(self, spark: SparkSession) -> None:
        self.accumulator: Any = None
        try:
            context = spark.sparkContext
        except Exception:
            return
        from pyspark.accumulators import AccumulatorParam

        class _Texts(AccumulatorParam):  # type: ignore[type-arg]
            def zero(self, value: list[str]) -> list[str]:
                return []

            def addInPlace(self, first: list[str], second: list[str]) -> list[str]:
                return first + second

        self.accumulator = context.accumulator([], _Texts())

    def add(self, encoded: str) -> None:
        if self.accumulator is not None:
            self.accumulator.add([encoded])

    def parts(self) -> list[StagedPart]:
        if self.accumulator is None:
            return []
        return [_decode(text).part for text in self.accumulator.value]
