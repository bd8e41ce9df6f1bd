"""Where ``batch_inference_flow`` scores: in the flow process or on a Dask cluster.

Scoring is the part of batch inference that parallelises: each partition of rows is
scored by :func:`score_partition`, a Prefect task that runs wherever the chosen task
runner puts it. The flow process reads, validates, fetches features and writes; Dask
workers only score, so they need neither the warehouse nor the feature store.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd
    from prefect.task_runners import TaskRunner

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
        ConfigurationError: For an address that is neither ``"local"`` nor a URL.
    """
    from prefect_dask import DaskTaskRunner

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
    with dask_runner_for(address, workers) as runner:
        yield runner


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
            if values.notna().any():
                low, high = float(values.min()), float(values.max())
                self.low[column] = min(self.low.get(column, low), low)
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
        if bounds and len(values) and (values.min() < bounds[0] or values.max() > bounds[1]):
            return True
    return False
