"""Backfills by partition: a materialization window cut into task runs, each done once.

``feature_materialization_flow(start=..., end=..., partition="1d")`` cuts ``[start,
end)`` into partitions, oldest first, and materializes each in a task run of its own
(``feast-backfill [START, END)``), whose state the Prefect UI shows. A partition's
result is persisted under a cache key naming the Feast project, the views and the
partition's bounds, so a re-run of the same window finds the partitions already done
(Prefect's ``Cached`` state) and skips them; only failed or new partitions run again.
The flow's result and the table artifact ``feast-backfill-<project>`` list every
partition with its status and the rows it wrote per view.

Examples:
    >>> from datetime import datetime
    >>> [f"{a:%d %H}h-{b:%d %H}h" for a, b in partitions(
    ...     datetime(2026, 1, 1), datetime(2026, 1, 2, 12), "1d")]
    ['01 00h-02 00h', '02 00h-02 12h']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prefect import task

from knot_prefect.durations import parse_duration
from knot_prefect.errors import ConfigurationError
from knot_prefect.features.materialization import utc

if TYPE_CHECKING:
    from knot_prefect.features.store import StoreLike

# More partitions than this is more likely a wrong size than a backfill.
MAX_PARTITIONS = 1000


def partitions(start: datetime, end: datetime, size: str | timedelta
               ) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of ``size`` (the last may be shorter).

    Raises:
        ConfigurationError: ``size`` is not a duration, ``start`` is not before ``end``,
            or the window would make more than :data:`MAX_PARTITIONS` partitions.
    """
    step = parse_duration(size, "partition")
    start, end = utc(start), utc(end)
    if start >= end:
        raise ConfigurationError(
            f"start ({start.isoformat()}) must be before end ({end.isoformat()}) to "
            "backfill by partition.")
    count = -(-(end - start) // step)
    if count > MAX_PARTITIONS:
        raise ConfigurationError(
            f"[{start.isoformat()}, {end.isoformat()}) in partitions of {step} makes "
            f"{count} partitions (at most {MAX_PARTITIONS}): choose a larger partition.")
    return [(start + i * step, min(start + (i + 1) * step, end)) for i in range(count)]


def _partition_key(context: Any, parameters: dict[str, Any]) -> str:
    import hashlib

    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(parameters["store"])
    # Which online store: two repos of one project (dev, prod) are different stores.
    # Hashed, as the configuration may hold credentials.
    where = hashlib.sha256(
        f"{feature_store.repo_path}|{feature_store.config.online_store.model_dump_json()}"
        .encode()).hexdigest()[:16]
    views = ",".join(sorted(parameters["views"] or ["*"]))
    return (f"feast-backfill:{feature_store.project}:{where}:{views}:"
            f"{parameters['start'].isoformat()}:{parameters['end'].isoformat()}")


@task(name="feast-backfill", task_run_name="feast-backfill [{start}, {end})",
      cache_key_fn=_partition_key, persist_result=True)
def materialize_partition(store: StoreLike, views: list[str] | None, start: datetime,
                          end: datetime) -> list[dict[str, Any]]:
    """Materialize ``[start, end)`` of ``views`` (a full, not incremental, window)."""
    from knot_prefect.tasks.features import materialize_views

    return materialize_views(store, views=views, end=end, incremental=False, start=start)


def backfill(store: StoreLike, views: Sequence[str] | None, start: datetime, end: datetime,
             size: str | timedelta, refresh: bool = False) -> list[dict[str, Any]]:
    """Materialize each partition of ``[start, end)`` in its own task run, oldest first.

    Args:
        store: A ``FeastFeatureStore`` block or its document name.
        views: Feature views; every online view when ``None``.
        start: Start of the window (naive values are UTC).
        end: End of the window.
        size: Partition size, e.g. ``"1d"``.
        refresh: Materialize every partition again, done or not.

    Returns:
        One dict per partition: ``start``, ``end``, ``status`` (``materialized`` or
        ``skipped``: done by an earlier run), ``rows`` (per view) and ``total_rows``.
    """
    from prefect.artifacts import create_table_artifact

    from knot_prefect.features.store import resolve_store

    windows = partitions(start, end, size)
    chosen = list(views) if views else None
    runner = materialize_partition.with_options(refresh_cache=refresh)
    report = []
    for first, last in windows:
        state = runner(store, chosen, first, last, return_state=True)
        written = state.result()  # raises when the partition failed: later ones wait
        rows = {item["view"]: item["rows"] for item in written}
        report.append({"start": first.isoformat(), "end": last.isoformat(),
                       "status": "skipped" if state.name == "Cached" else "materialized",
                       "rows": rows, "total_rows": sum(rows.values())})
    project = resolve_store(store)[0].project
    create_table_artifact(
        [{**row, "rows": ", ".join(f"{k}: {v}" for k, v in row["rows"].items())}
         for row in report],
        key=f"feast-backfill-{project}".lower().replace("_", "-"),
        description=f"Backfill of {project} in {len(windows)} partition(s) of "
        f"{parse_duration(size, 'partition')}",
    )
    return report


__all__ = ["MAX_PARTITIONS", "backfill", "materialize_partition", "partitions"]
