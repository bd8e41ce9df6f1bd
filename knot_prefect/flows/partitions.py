"""Backfills by partition: a window cut into task runs, each done once.

A backfill cuts ``[start, end)`` into partitions, oldest first, and runs each in a
task run of its own (``<name> [START, END)``), whose state the Prefect UI shows. A
partition's result is persisted under a cache key naming what the work does and the
partition's bounds, so a re-run of the same window finds the partitions already done
(Prefect's ``Cached`` state) and skips them; only failed or new partitions run again.
A key names where the output goes (a path, a block), not the data there: a backfill
may give a check that the destination still holds a done partition's output, and a
partition whose output is gone (the table recreated, another lake at the same path)
runs again.

A failing partition fails only itself: the others still run and publish, the
backfill's table artifact lists every partition with its status, its results and its
error, and the flow run then fails naming the failed partitions.

Examples:
    >>> from datetime import datetime
    >>> [f"{a:%d %H}h-{b:%d %H}h" for a, b in partitions(
    ...     datetime(2026, 1, 1), datetime(2026, 1, 2, 12), "1d")]
    ['01 00h-02 00h', '02 00h-02 12h']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from prefect import task

from knot_prefect.durations import parse_duration
from knot_prefect.errors import ConfigurationError, KnotError
from knot_prefect.features.materialization import utc

# More partitions than this is more likely a wrong size than a backfill.
MAX_PARTITIONS = 1000

Work = Callable[[datetime, datetime], dict[str, Any]]
#: Whether the destination still holds a done partition's output: ``holds(start, end,
#: result)`` with the result its run returned.
Holds = Callable[[datetime, datetime, dict[str, Any]], bool]


class PartitionsFailedError(KnotError):
    """Some partitions of a backfill failed; the others are done and published."""


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


def work_key(*parts: Any) -> str:
    """A short, stable name of what a partition's work does (hashed: it may hold
    credentials or long queries)."""
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _partition_key(context: Any, parameters: dict[str, Any]) -> str:
    return (f"{parameters['key']}:{parameters['start'].isoformat()}:"
            f"{parameters['end'].isoformat()}")


@task(cache_key_fn=_partition_key, persist_result=True)
def run_partition(work: Work, key: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Do ``work`` for ``[start, end)``; its result is cached under ``key`` and the bounds."""
    return work(start, end)


def run_partitions(work: Work, name: str, key: str, windows: Sequence[tuple[datetime, datetime]],
                   refresh: bool = False, holds: Holds | None = None) -> list[dict[str, Any]]:
    """Run ``work`` for each window in a task run of its own, oldest first.

    Args:
        work: Does one partition, ``work(start, end)``; returns its results (a dict).
        name: Task run name of the partitions, e.g. ``"feast-backfill"``.
        key: What ``work`` does (see :func:`work_key`): with a window's bounds, the
            cache key of its result.
        windows: The partitions (see :func:`partitions`).
        refresh: Run every partition again, done or not.
        holds: Checks that a partition found done still has its output where it was
            written; one that has not is run again (a task run of its own).

    Returns:
        One dict per partition: ``start``, ``end``, ``status`` (``done``, ``skipped``:
        done by an earlier run, or ``failed``), ``result`` (``work``'s dict, ``None``
        when failed) and ``error`` (the failure's message, ``None`` otherwise).
    """
    runner = run_partition.with_options(
        name=name, task_run_name=f"{name} [{{start}}, {{end}})", refresh_cache=refresh)
    again = runner.with_options(refresh_cache=True)
    report = []
    for first, last in windows:
        state = runner(work, key, first, last, return_state=True)
        result = state.result(raise_on_failure=False)
        if (state.name == "Cached" and holds is not None and isinstance(result, dict)
                and not holds(first, last, result)):
            state = again(work, key, first, last, return_state=True)
            result = state.result(raise_on_failure=False)
        failed = not state.is_completed()
        report.append({
            "start": first.isoformat(), "end": last.isoformat(),
            "status": "failed" if failed else (
                "skipped" if state.name == "Cached" else "done"),
            "result": None if failed else result,
            "error": f"{type(result).__name__}: {result}" if failed else None,
        })
    return report


def publish_report(report: list[dict[str, Any]], artifact_key: str, what: str,
                   columns: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The backfill's table artifact, then a failure naming the failed partitions.

    Args:
        report: :func:`run_partitions`'s report.
        artifact_key: Key of the table artifact (one row per partition).
        what: What was backfilled, for the artifact's description and the error.
        columns: A done partition's result as the artifact's columns.

    Raises:
        PartitionsFailedError: A partition failed (the others are done).
    """
    from prefect.artifacts import create_table_artifact

    create_table_artifact(
        [{"start": row["start"], "end": row["end"], "status": row["status"],
          **(columns(row["result"]) if row["result"] is not None else {}),
          "error": row["error"] or ""} for row in report],
        key=artifact_key.lower().replace("_", "-"),
        description=f"Backfill of {what} in {len(report)} partition(s)",
    )
    failed = [row for row in report if row["status"] == "failed"]
    if failed:
        raise PartitionsFailedError(
            f"{len(failed)} of {len(report)} partition(s) of the backfill of {what} "
            "failed: " + "; ".join(
                f"[{row['start']}, {row['end']}): {row['error']}" for row in failed)
            + " -- fix the cause and run the same window again: only these partitions "
            "run again.")


__all__ = ["MAX_PARTITIONS", "Holds", "PartitionsFailedError", "partitions", "publish_report",
           "run_partition", "run_partitions", "work_key"]
