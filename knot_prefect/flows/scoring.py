"""How ``batch_inference_flow`` scores rows, in the flow process or on Dask workers.

Scoring is the part of batch inference that parallelises. Two ways, each a plain
function with a task around it for the Dask workers:

- next to the data (:func:`score_range_in_warehouse`, task :data:`score_key_range`):
  with the model's inputs in the warehouse, the flow process only plans ranges of the
  key column (:func:`plan_partitions`); each worker reads its range from the warehouse,
  scores it and stages the predictions there, and the flow commits every staged part
  in one atomic step. No row passes through the flow process.
- frames shipped to the workers (:func:`score_frame`, task :data:`score_partition`):
  the flow process reads, validates, fetches features and writes; the workers only
  score, so they need neither the warehouse nor the feature store.

Which runner scores, and how many workers it has, is :mod:`knot_prefect.flows.dask_runner`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.blocks.warehouses.identifiers import quote_identifier
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows.worker_allocator import tune_worker_allocator

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from prefect.task_runners import TaskRunner

    from knot_prefect.blocks.warehouses.base import StagedPart, Warehouse
    from knot_prefect.lineage.columns import Lineage


def score_frame(
    frame: pd.DataFrame, model: Any, keys: list[str], batch_rows: int
) -> pd.DataFrame:
    """Score one partition and return its keys beside the predictions.

    A plain function of its inputs (no block, no warehouse), so it runs on any Dask
    worker and a retry recomputes exactly the same rows.

    Args:
        frame: Rows to score: the key columns and the model's input columns.
        model: A ``LoadedModel``, a pyfunc model or any object with ``predict``.
        keys: Key columns copied to the output.
        batch_rows: Rows per call to the model.

    Returns:
        ``frame[keys]`` joined with the prediction column(s).
    """
    from knot_prefect.tasks.mlflow_predict import predict_frame

    tune_worker_allocator()
    predictions = predict_frame(frame, model, batch_rows=batch_rows)
    return frame[keys].join(predictions)


score_partition = task(name="score-partition", cache_policy=NO_CACHE, retries=2,
                       retry_delay_seconds=1)(score_frame)


def scored_stream(
    runner: TaskRunner[Any] | None,
    frames: Iterable[pd.DataFrame],
    model: Any,
    keys: list[str],
    batch_rows: int,
    in_flight: int,
) -> Iterator[pd.DataFrame]:
    """Score frames as they come, at most ``in_flight`` at a time, yielding in order.

    With a Dask runner the partitions are scored in parallel on the workers while the
    flow process prepares the next ones; the bounded window keeps the flow process's
    memory flat whatever the number of frames.
    """
    if runner is None:
        for frame in frames:
            # The plain function: a task call in the flow process would keep its
            # result referenced by the flow run for dependency tracking, so memory
            # would grow with every batch.
            scored = score_frame(frame, model, keys, batch_rows)
            del frame  # not held while the caller reads the next frame
            yield scored
        return
    pending: deque[Any] = deque()
    for frame in frames:
        pending.append(runner.submit(
            score_partition,
            parameters={"frame": frame, "model": model, "keys": keys,
                        "batch_rows": batch_rows},
        ))
        del frame  # the runner holds it until scored; not this loop while it waits
        while len(pending) >= max(in_flight, 1):
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def partitions(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """Split ``frame`` into consecutive partitions of at most ``rows`` rows."""
    if rows < 1:
        raise ConfigurationError(f"batch_rows must be at least 1, not {rows}.")
    return [frame.iloc[start:start + rows] for start in range(0, len(frame), rows)] or [frame]


class PredictionStats:
    """Null counts, minimum and maximum of each prediction column over all batches."""

    def __init__(self) -> None:
        self.rows = 0
        self.nulls: dict[str, int] = {}
        self.low: dict[str, float] = {}
        self.high: dict[str, float] = {}

    def add(self, predictions: pd.DataFrame, columns: Sequence[str]) -> None:
        """Fold one batch of predictions in."""
        self.rows += len(predictions)
        for column in columns:
            values = predictions[column]
            self.nulls[column] = self.nulls.get(column, 0) + int(values.isna().sum())
            # Bounds apply to numbers; a classifier's label may be text.
            if _is_number(values) and values.notna().any():
                low, high = float(values.min()), float(values.max())
                self.low[column] = min(self.low.get(column, low), low)
                self.high[column] = max(self.high.get(column, high), high)

    def merge(self, other: PredictionStats) -> None:
        """Fold in the statistics of another set of batches (say, a worker's partition)."""
        self.rows += other.rows
        for column, nulls in other.nulls.items():
            self.nulls[column] = self.nulls.get(column, 0) + nulls
        for column, low in other.low.items():
            self.low[column] = min(self.low.get(column, low), low)
        for column, high in other.high.items():
            self.high[column] = max(self.high.get(column, high), high)

    def null_fraction(self, column: str) -> float:
        """Share of null predictions in ``column`` so far."""
        return self.nulls.get(column, 0) / self.rows if self.rows else 0.0


def run_checks(
    check: Callable[..., Any],
    stats: PredictionStats,
    output_table: str,
    bounds: list[float] | None,
) -> None:
    """The flow's prediction checks (no nulls; within bounds) on the aggregated stats."""
    for column in stats.nulls:
        check(stats.null_fraction(column), f"{output_table}-{column}-nulls",
              equal=0.0, severity="error")
        if bounds and column in stats.low:
            lower, upper = bounds
            check(stats.low[column], f"{output_table}-{column}-min", lower=lower,
                  severity="error")
            check(stats.high[column], f"{output_table}-{column}-max", upper=upper,
                  severity="error")


def batch_violates(batch: pd.DataFrame, columns: Sequence[str],
                   bounds: list[float] | None) -> bool:
    """Whether a batch breaks a prediction check (so it must not be written)."""
    for column in columns:
        values = batch[column]
        if values.isna().any():
            return True
        if bounds and len(values) and _is_number(values) and (
                values.min() < bounds[0] or values.max() > bounds[1]):
            return True
    return False


def _is_number(values: pd.Series) -> bool:
    return values.dtype.kind in "iuf"


def with_lineage(scored: pd.DataFrame, lineage: Lineage) -> pa.Table:
    """Keys and predictions as an Arrow table with the lineage columns appended.

    The same columns and value types as ``lineage.attach(scored)``, but each lineage
    column holds one value: text columns are dictionary-encoded (one string and an
    index per row, which a ParquetLake writes without decoding), others repeat one
    Arrow value, so attaching lineage costs next to nothing per row.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    template = pa.Table.from_pandas(lineage.attach(pd.DataFrame(index=range(1))),
                                    preserve_index=False)
    table = pa.Table.from_pandas(scored, preserve_index=False)
    rows = table.num_rows
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    for name in template.column_names:
        value = template.column(name).combine_chunks()
        if pa.types.is_string(value.type):
            column = pa.DictionaryArray.from_arrays(indices, value)
        else:
            column = pa.repeat(value[0], rows)
        table = table.append_column(name, column)
    return table


# -- scoring next to the data: partitions read and written by the workers ----------------
# Each range costs a Prefect task run (about 0.1 s of bookkeeping on a worker) and a
# retry recomputes one range; memory does not depend on it (ranges stream by batch).
# At about 0.4 µs a row, 4M rows is ~1.6 s of work: overhead stays near 5%.
PARTITION_ROWS = 4_000_000
MAX_PARTITIONS = 64


@dataclass(frozen=True)
class Partition:
    """One range of the first key column: ``lower <= key < upper`` (None: unbounded)."""

    number: int
    lower: Any
    upper: Any

    def sql(self, entity_sql: str, key: str, quote: str = '"') -> tuple[str, dict[str, Any]]:
        """The entity query restricted to this partition, with its bound values.

        Args:
            entity_sql: The query of the rows to score.
            key: The column the ranges split.
            quote: The warehouse's identifier quote (``Warehouse.identifier_quote``).
        """
        column = f"q.{quote_identifier(key, 'key column', quote)}"
        conditions, values = [], {}
        if self.lower is not None:
            conditions.append(f"{column} >= :knot_partition_lower")
            values["knot_partition_lower"] = self.lower
        if self.upper is not None:
            conditions.append(f"{column} < :knot_partition_upper")
            values["knot_partition_upper"] = self.upper
        where = " AND ".join(conditions) or "1 = 1"
        if self.lower is None:
            # Null keys land in the first partition, where publishing refuses them.
            where = f"({where}) OR {column} IS NULL"
        return f"SELECT * FROM ({entity_sql.strip().rstrip(';')}) AS q WHERE {where}", values


def plan_partitions(
    warehouse: Warehouse,
    entity_sql: str,
    params: dict[str, Any] | None,
    key: str,
    workers: int,
    partition_rows: int | None = None,
) -> tuple[int, list[Partition]]:
    """Split the rows of ``entity_sql`` into ranges of ``key`` of about equal size.

    Only the key column is read, by the warehouse itself (portable SQL: ``count`` and
    ``ntile``); the rows are read by the workers, one range each. The number of
    partitions is a multiple of ``workers`` so that every worker gets the same share.

    Returns:
        The number of rows, and the partitions.
    """
    if partition_rows is not None and partition_rows < 1:
        raise ConfigurationError(f"partition_rows must be at least 1, not {partition_rows}.")
    clash = {"knot_partition_lower", "knot_partition_upper"} & set(params or {})
    if clash:
        raise ConfigurationError(
            f"entity_params may not use the names {sorted(clash)}: knot binds them to split "
            "the rows into partitions. Rename them in entity_sql and entity_params."
        )
    source = f"({entity_sql.strip().rstrip(';')}) AS q"
    column = f"q.{quote_identifier(key, 'key column', warehouse.identifier_quote)}"
    found = warehouse.read_arrow(f"SELECT count(*) AS n FROM {source}", params)
    total = int(found.column(0)[0].as_py() or 0)
    workers = max(workers, 1)
    if partition_rows is None:
        count = workers * max(1, -(-total // (workers * PARTITION_ROWS)))
    else:
        count = max(1, -(-total // partition_rows))
    count = min(count, max(total, 1), MAX_PARTITIONS)
    cuts: list[Any] | None = None
    if count > 1:
        cuts = _sketched_cuts(warehouse, source, column, count, params)
    if count > 1 and cuts is None:
        # The largest key of each of ``count`` equal tiles; repeated values (few
        # distinct keys) merge, leaving fewer partitions.
        tiles = warehouse.read_arrow(
            f"SELECT max(k) AS cut FROM (SELECT {column} AS k, ntile({count}) OVER "
            f"(ORDER BY {column}) AS tile FROM {source} WHERE {column} IS NOT NULL) AS t "
            "GROUP BY tile ORDER BY 1",
            params,
        )
        cuts = sorted(set(tiles.column(0).to_pylist()[:-1]) - {None})
    bounds = [None, *(cuts or []), None]
    return total, [Partition(i, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _sketched_cuts(warehouse: Warehouse, source: str, column: str, count: int,
                   params: dict[str, Any] | None) -> list[Any] | None:
    """Cuts from DuckDB's quantile sketch, for warehouses DuckDB runs in this process.

    ``ntile`` sorts every key, in the flow process's memory when DuckDB runs there
    (a lake, a DuckDB file): about 20 MB more per million keys. A t-digest sketch
    (``approx_quantile``) keeps the same memory whatever the rows, and its ranges
    are still about equal. None for other warehouses (their servers run ``ntile``)
    and for keys the sketch cannot order (text): ``ntile`` then.
    """
    from knot_prefect.blocks.warehouses.base import WarehouseError
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.blocks.warehouses.lake.block import LakeWarehouse

    if not isinstance(warehouse, LakeWarehouse | DuckDBWarehouse):
        return None
    fractions = ", ".join(str(i / count) for i in range(1, count))
    try:
        found = warehouse.read_arrow(
            f"SELECT approx_quantile({column}, [{fractions}]) AS cuts FROM {source}", params)
    except WarehouseError:
        return None
    values = found.column(0)[0].as_py() or []
    return sorted(set(values) - {None})


def score_range_in_warehouse(
    warehouse: Warehouse,
    entity_sql: str,
    params: dict[str, Any] | None,
    partition: Partition,
    model: Any,
    keys: list[str],
    batch_rows: int,
    lineage: Lineage,
    output_table: str,
    stage_id: str,
) -> tuple[StagedPart, PredictionStats]:
    """Read one range of keys from the warehouse, score it and stage the predictions there.

    On a Dask worker (as the task :data:`score_key_range`) the rows go from the
    warehouse to the worker and the scored rows back to the warehouse, never through
    the flow process; without Dask the flow process scores range after range. Nothing
    is visible
    until the flow commits every partition at once; a retry replaces this partition's
    staged rows.

    Returns:
        The staged part and the statistics of its predictions (for the checks).
    """
    from knot_prefect.tasks.mlflow_predict import predict_frame

    tune_worker_allocator()
    sql, values = partition.sql(entity_sql, keys[0], warehouse.identifier_quote)
    stats = PredictionStats()

    def scored_batches() -> Iterator[pa.Table]:
        for batch in warehouse.read_batches(sql, {**(params or {}), **values}, batch_rows):
            frame = batch.to_pandas()
            predictions = predict_frame(frame, model, batch_rows=batch_rows)
            stats.add(predictions, list(predictions.columns))
            yield with_lineage(frame[keys].join(predictions), lineage)

    part = warehouse.stage(scored_batches(), output_table, stage_id, partition.number,
                           unique_keys=keys)
    return part, stats


score_key_range = task(name="score-partition-by-key-range", cache_policy=NO_CACHE,
                       retries=2, retry_delay_seconds=1)(score_range_in_warehouse)
