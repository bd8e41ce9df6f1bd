"""Backfills of the online store by partition (see :mod:`knot_prefect.flows.partitions`).

``feature_materialization_flow(start=..., end=..., partition="1d")`` materializes each
partition of ``[start, end)`` in a task run of its own (``feast-backfill [START,
END)``). A partition's result is cached under a key naming the Feast project, its
online store, the views and the partition's bounds, so a re-run of the same window
skips the partitions already done; a failed partition fails only itself. The table
artifact ``feast-backfill-<project>`` lists every partition with its status, the rows
it wrote per view and its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from knot_prefect.flows.partitions import (
    MAX_PARTITIONS,
    partitions,
    publish_report,
    run_partitions,
    work_key,
)

if TYPE_CHECKING:
    from knot_prefect.features.store import StoreLike


def _store_key(store: StoreLike, views: list[str] | None) -> str:
    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(store)
    # Which online store: two repos of one project (dev, prod) are different stores.
    return f"feast-backfill:{feature_store.project}:" + work_key(
        feature_store.repo_path, feature_store.config.online_store.model_dump_json(),
        sorted(views or ["*"]))


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

    Raises:
        PartitionsFailedError: A partition failed; the others are materialized.
    """
    from knot_prefect.features.store import resolve_store
    from knot_prefect.tasks.features import materialize_views

    chosen = list(views) if views else None

    def materialize_partition(first: datetime, last: datetime) -> dict[str, Any]:
        written = materialize_views(store, views=chosen, end=last, incremental=False,
                                    start=first)
        rows = {item["view"]: item["rows"] for item in written}
        return {"rows": rows, "total_rows": sum(rows.values())}

    report = run_partitions(materialize_partition, "feast-backfill",
                            _store_key(store, chosen), partitions(start, end, size), refresh)
    project = resolve_store(store)[0].project
    publish_report(
        report, f"feast-backfill-{project}",
        f"{project}'s online store ({size} each)",
        lambda done: {"rows": ", ".join(f"{k}: {v}" for k, v in done["rows"].items()),
                      "total_rows": done["total_rows"]})
    return [{"start": row["start"], "end": row["end"],
             "status": "materialized" if row["status"] == "done" else row["status"],
             **row["result"]} for row in report]


__all__ = ["MAX_PARTITIONS", "backfill", "partitions"]
