"""Where ``batch_inference_flow`` scores: in the flow process or on a Dask cluster.

Scoring is the part of batch inference that parallelises. Two ways:

- next to the data (:func:`score_key_range`): with the model's inputs in the warehouse,
  the flow process only plans ranges of the key column; each Dask worker reads its
  range from the warehouse, scores it and stages the predictions there, and the flow
  commits every staged part in one atomic step. No row passes through the flow process.
- frames shipped to the workers (:func:`score_partition`): the flow process reads,
  validates, fetches features and writes; the workers only score, so they need neither
  the warehouse nor the feature store.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.blocks.warehouses.identifiers import quote_identifier
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows._worker_allocator import tune_worker_allocator

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from prefect.task_runners import TaskRunner

    from knot_prefect.blocks.warehouses.base import StagedPart, Warehouse
    from knot_prefect.lineage.columns import Lineage

LOCAL_CLUSTER = "local"


@task(name="score-partition", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def score_partition(
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


def is_dask_runner(runner: Any) -> bool:
    """Whether ``runner`` is prefect-dask's ``DaskTaskRunner`` (checked without importing it)."""
    return type(runner).__module__.startswith("prefect_dask")


def dask_runner_for(address: str, workers: int = 2) -> TaskRunner[Any]:
    """A ``DaskTaskRunner`` for a scheduler address or a temporary local cluster.

    Args:
        address: ``"tcp://host:port"`` of a running scheduler, or ``"local"`` for a
            ``LocalCluster`` that lives as long as the run.
        workers: Worker processes of the temporary cluster (one thread each).

    Returns:
        An unstarted task runner.

    Raises:
        ConfigurationError: For an address that is neither ``"local"`` nor a URL, or
            when this process has a default Dask client connected elsewhere
            (prefect-dask would run on that client's cluster instead).
    """
    from prefect_dask import DaskTaskRunner

    _refuse_other_default_client(address)
    if address == LOCAL_CLUSTER:
        if workers < 1:
            raise ConfigurationError(f"dask_workers must be at least 1, not {workers}.")
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                            "processes": True, "dashboard_address": None},
        )
    if "://" not in address:
        raise ConfigurationError(
            f"dask_address {address!r} is not a scheduler address: pass 'tcp://HOST:PORT' "
            f"of a running scheduler, or {LOCAL_CLUSTER!r} for a temporary local cluster."
        )
    return DaskTaskRunner(address=address)


def _refuse_other_default_client(address: str) -> None:
    """Refuse an address that prefect-dask would silently replace.

    ``DaskTaskRunner`` connects to the cluster of the process's default Dask client
    (``distributed.get_client()``) whenever there is one, whatever address or cluster
    settings it was given.
    """
    import sys

    if "distributed" not in sys.modules:
        return  # no client can exist yet
    import distributed

    try:
        scheduler = distributed.get_client().scheduler
    except ValueError:
        return
    current = getattr(scheduler, "address", None)
    if not isinstance(current, str) or _same_scheduler(address, current):
        return
    wanted = "a temporary local cluster" if address == LOCAL_CLUSTER else address
    raise ConfigurationError(
        f"This process has a default Dask client connected to {current}, and "
        f"prefect-dask's DaskTaskRunner would run on that cluster instead of {wanted}. "
        f"Pass {current!r} as the address to use it, or close that client (or create it "
        "with Client(..., set_as_default=False)) to run where asked."
    )


def _same_scheduler(address: str, current: str) -> bool:
    """Whether ``address`` names ``current``'s scheduler (``localhost`` = ``127.0.0.1``)."""
    if address == LOCAL_CLUSTER:
        return False
    from distributed.comm.addressing import resolve_address

    try:
        return bool(resolve_address(address) == resolve_address(current))
    except (ValueError, OSError):  # an address that does not resolve
        return address == current


@contextlib.contextmanager
def scoring_runner(address: str | None, workers: int = 2) -> Iterator[TaskRunner[Any] | None]:
    """The task runner partitions are scored on, started for the ``with`` block.

    ``address`` given: a Dask runner for it (see :func:`dask_runner_for`). Otherwise the
    flow's own task runner when it is a ``DaskTaskRunner`` (set with
    ``flow.with_options(task_runner=...)``), else None: score in the flow process.
    """
    if address is None:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        runner = context.task_runner if context else None
        yield runner if is_dask_runner(runner) else None
        return
    with started_dask_runner(address, workers) as runner:
        yield runner


@contextlib.contextmanager
def started_dask_runner(address: str, workers: int = 2) -> Iterator[TaskRunner[Any]]:
    """:func:`dask_runner_for`, started for the ``with`` block, its cluster up at once.

    Each nanny of a temporary local cluster writes its workers' settings
    (``distributed.nanny.pre-spawn-environ``: ``OMP_NUM_THREADS=1``,
    ``MALLOC_TRIM_THRESHOLD_``, ``PYTHONHASHSEED`` ...) into this process's environment
    before it spawns a worker. They are put back as they were once the cluster is up and
    again when the block ends, so that the caller, and libraries or processes it starts
    later, keep their own thread counts and allocator.
    """
    names = _nanny_environment_names()
    before = {name: os.environ.get(name) for name in names}
    try:
        with dask_runner_for(address, workers) as runner:
            # prefect-dask starts (or connects to) the cluster on first use of its client.
            getattr(runner, "client", None)
            _restore_environment(before)
            yield runner
    finally:
        _restore_environment(before)


def _nanny_environment_names() -> set[str]:
    import dask.config
    import distributed  # noqa: F401  (registers the distributed.* configuration)

    configured = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return set(configured) | {"PYTHONHASHSEED"}


def _restore_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
            yield score_partition.fn(frame, model, keys, batch_rows)
        return
    pending: deque[Any] = deque()
    for frame in frames:
        pending.append(runner.submit(
            score_partition,
            parameters={"frame": frame, "model": model, "keys": keys,
                        "batch_rows": batch_rows},
        ))
        while len(pending) >= max(in_flight, 1):
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def partitions(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """Split ``frame`` into consecutive partitions of at most ``rows`` rows."""
    if rows < 1:
        raise ConfigurationError(f"batch_rows must be at least 1, not {rows}.")
    return [frame.iloc[start:start + rows] for start in range(0, len(frame), rows)] or [frame]


def workers_of(runner: TaskRunner[Any] | None) -> int:
    """How many workers the runner has (1 in the flow process)."""
    if runner is None or not is_dask_runner(runner):
        return 1
    with contextlib.suppress(Exception):
        info = runner.client.scheduler_info()  # type: ignore[attr-defined]
        return max(len(info.get("workers", {})), 1)
    return 1


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
    cuts: list[Any] = []
    if count > 1:
        # The largest key of each of ``count`` equal tiles; repeated values (few
        # distinct keys) merge, leaving fewer partitions.
        tiles = warehouse.read_arrow(
            f"SELECT max(k) AS cut FROM (SELECT {column} AS k, ntile({count}) OVER "
            f"(ORDER BY {column}) AS tile FROM {source} WHERE {column} IS NOT NULL) AS t "
            "GROUP BY tile ORDER BY 1",
            params,
        )
        cuts = sorted(set(tiles.column(0).to_pylist()[:-1]) - {None})
    bounds = [None, *cuts, None]
    return total, [Partition(i, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


@task(name="score-partition-by-key-range", cache_policy=NO_CACHE, retries=2,
      retry_delay_seconds=1)
def score_key_range(
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

    Runs on a Dask worker: the rows go from the warehouse to this worker and the scored
    rows back to the warehouse, never through the flow process. Nothing is visible
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
