"""Backfills of predictions by partition: ``batch_inference_flow(start=, end=, partition=)``.

The rows to score carry a time: ``entity_sql`` selects one partition's rows through
the ``:start`` and ``:end`` placeholders (``WHERE event_at >= :start AND event_at <
:end``), bound to each partition's bounds. Each partition is scored and published in
a task run of its own (``batch-inference-backfill [START, END)``), on the same path as
an unpartitioned run, so its predictions are published at once or not at all, and
historical features are read as of the partition's end unless ``as_of`` is given.

A partition's summary is cached under a key naming everything the scoring depends on
but the bounds (model, alias, query, tables, blocks), so a re-run of the same window
skips the partitions already done (``refresh=True`` scores them again, e.g. after a
new champion). Done means published: a partition is skipped only while the output
table still holds its predictions (the rows of its query, by their
``source_query_hash`` lineage column); one whose predictions are gone (the table
dropped or recreated, another database at the same path) is scored again.

A partition failing its contract (too many bad rows) or a prediction check fails only
itself: the others publish, the table artifact
``batch-inference-backfill-<output table>`` lists every partition with its rows, its
contract result and its error, and the run fails naming the failed partitions; a
re-run scores only those.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.flows.partitions import (
    Holds,
    partitions,
    publish_report,
    run_partitions,
    work_key,
)
from knot_prefect.flows.scoring_request import ScoringRequest

# Parameters of a backfill rather than of scoring one partition.
WINDOW_PARAMETERS = ("start", "end", "partition", "refresh")


def backfill(score: Callable[..., Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Score and publish each partition of ``[start, end)`` in its own task run.

    Args:
        score: Scores and publishes the rows of one partition, given as a
            :class:`~knot_prefect.flows.scoring_request.ScoringRequest`, without a flow
            run of its own (``score_and_publish``).
        parameters: The flow's parameters, the window's included.

    Returns:
        The totals (``rows_read``, ``rows_quarantined``, ``rows_published``) and
        ``partitions``: per partition its ``start``, ``end``, ``status`` (``scored``
        or ``skipped``: done by an earlier run) and its scoring summary.

    Raises:
        ConfigurationError: The window is incomplete or bad, or ``entity_sql`` does not
            select a partition's rows with ``:start`` and ``:end``.
        PartitionsFailedError: A partition failed; the others are published.
    """
    from prefect.states import State

    from knot_prefect.tasks import finish_with_warnings

    start, size = parameters["start"], parameters["partition"]
    if start is None or size is None:
        raise ConfigurationError(
            "A backfill needs both start= and partition= (e.g. start=2026-01-01, "
            "partition='1d'); give neither to score all rows of entity_sql once.")
    windows = partitions(start, parameters["end"] or datetime.now(UTC), size)
    entity_sql = parameters["entity_sql"]
    if entity_sql is not None and not all(f":{bound}" in entity_sql
                                          for bound in ("start", "end")):
        raise ConfigurationError(
            "A backfill scores each partition's rows: entity_sql must select them with "
            "the :start and :end placeholders, e.g. \"SELECT * FROM events WHERE "
            f"event_at >= :start AND event_at < :end\" (got {entity_sql!r}).")
    scoring = {k: v for k, v in parameters.items() if k not in WINDOW_PARAMETERS}

    def score_partition(first: datetime, last: datetime) -> dict[str, Any]:
        summary = score(ScoringRequest(**{
            **scoring,
            "entity_params": {**(scoring["entity_params"] or {}), "start": first,
                              "end": last},
            "as_of": scoring["as_of"] or last,
        }))
        # A partition that warned still completed: its summary is the state's data.
        return dict(summary.data if isinstance(summary, State) else summary)

    report = run_partitions(score_partition, "batch-inference-backfill",
                            "batch-inference:" + work_key(scoring), windows,
                            parameters["refresh"], _published(scoring))
    output = parameters["output_table"] or "predictions"
    publish_report(
        report, f"batch-inference-backfill-{output}",
        f"predictions into {output} ({size} each)", _columns)
    done = [row["result"] for row in report]
    return finish_with_warnings({
        **{total: sum(summary[total] for summary in done)
           for total in ("rows_read", "rows_quarantined", "rows_published")},
        "partitions": [{"start": row["start"], "end": row["end"],
                        "status": "scored" if row["status"] == "done" else row["status"],
                        **row["result"]} for row in report],
    })


def _published(scoring: dict[str, Any]) -> Holds:
    """Whether the output table still holds a done partition's predictions."""
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.documents.defaults import LOCAL_WAREHOUSE
    from knot_prefect.flows._parameters import settle
    from knot_prefect.lineage.columns import source_query_hash

    given = settle("batch_inference_flow", scoring["spec"])
    warehouse = resolve_block(given.or_default(scoring["warehouse"], "warehouse",
                                               LOCAL_WAREHOUSE), Warehouse,
                              parameter="warehouse")
    entity_sql: str = scoring["entity_sql"] if scoring["entity_sql"] is not None else (
        given.spec.rows_to_score if given.spec is not None else "")

    def holds(first: datetime, last: datetime, done: dict[str, Any]) -> bool:
        if not done["rows_published"]:
            return True  # nothing to hold
        table = done["output_table"]
        if not warehouse.table_exists(table):
            return False
        query = source_query_hash(entity_sql, {**(scoring["entity_params"] or {}),
                                               "start": first, "end": last})
        quoted = warehouse.table_name(table).quoted(warehouse.identifier_quote)
        found = warehouse.read_arrow(
            f"SELECT count(*) AS n FROM {quoted} WHERE source_query_hash = :query",
            {"query": query})
        return int(found.column(0)[0].as_py()) >= done["rows_published"]

    return holds


def _columns(summary: dict[str, Any]) -> dict[str, Any]:
    contract = summary["contract_version"]
    return {
        "rows read": summary["rows_read"],
        "rows published": summary["rows_published"],
        "contract": (f"{contract}: passed, {summary['rows_quarantined']} row(s) "
                     "quarantined") if contract else "none",
        "model": summary["model"],
    }


__all__ = ["WINDOW_PARAMETERS", "backfill"]
