"""Rank the trials of a search and describe them: the table artifact and MLflow records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from knot_prefect.tuning.trial import TrialRecord


def rank(records: Sequence[TrialRecord], metric: str, mode: str) -> list[TrialRecord]:
    """Finished trials best first (ties: the earlier trial), then failed ones by number.

    Examples:
        >>> a = TrialRecord(0, {"x": 1}, "FINISHED", metrics={"m": 0.5})
        >>> b = TrialRecord(1, {"x": 2}, "FINISHED", metrics={"m": 0.9})
        >>> c = TrialRecord(2, {"x": 3}, "FAILED", error="ValueError: boom")
        >>> [r.index for r in rank([a, b, c], "m", "max")]
        [1, 0, 2]
        >>> [r.index for r in rank([a, b, c], "m", "min")]
        [0, 1, 2]
    """
    sign = -1.0 if mode == "max" else 1.0
    finished = sorted(
        (r for r in records if r.status == "FINISHED"),
        key=lambda r: (sign * r.metrics[metric], r.index),
    )
    failed = sorted((r for r in records if r.status != "FINISHED"), key=lambda r: r.index)
    return finished + failed


def table_rows(ranked: Sequence[TrialRecord], metric: str) -> list[dict[str, Any]]:
    """One row per trial for the Prefect table artifact, in ranking order."""
    rows = []
    for position, record in enumerate(ranked, start=1):
        finished = record.status == "FINISHED"
        rows.append({
            "rank": position if finished else "-",
            "trial": record.index,
            "status": record.status,
            metric: round(record.metrics[metric], 6) if finished else "-",
            "params": json.dumps(record.params, sort_keys=True, default=str),
            "seconds": record.seconds if record.seconds is not None else "-",
            "mlflow_run_id": record.run_id or "-",
            "error": (record.error or "")[:300],
        })
    return rows


def records_json(ranked: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """The trials as plain data (logged to the search's MLflow run as ``trials.json``)."""
    return [
        {
            "trial": r.index,
            "status": r.status,
            "params": r.params,
            "metrics": r.metrics,
            "run_id": r.run_id,
            "model_uri": r.model_uri,
            "error": r.error,
            "seconds": r.seconds,
        }
        for r in ranked
    ]
