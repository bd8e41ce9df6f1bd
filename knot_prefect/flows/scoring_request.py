"""``ScoringRequest``: what one scoring run of ``batch_inference_flow`` is asked to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from knot_prefect.documents.defaults import DEFAULT_ALIAS


@dataclass(frozen=True)
class ScoringRequest:
    """The parameters of :func:`~knot_prefect.flows.batch_inference.batch_inference_flow`
    but the backfill window, with the same names, defaults and meaning.

    The flow builds one from its own parameters and scores it with
    :func:`~knot_prefect.flows.batch_inference.score_and_publish`; a backfill scores
    one per partition, its bounds bound to ``entity_params``.

    Examples:
        >>> request = ScoringRequest(spec="loan-default", batch_rows=10_000)
        >>> (request.spec, request.batch_rows, request.stream)
        ('loan-default', 10000, False)
    """

    spec: str | None = None
    entity_sql: str | None = None
    key_columns: list[str] | None = None
    model_name: str | None = None
    output_table: str | None = None
    features: str | list[str] | None = None
    feature_source: Literal["historical", "online", "warehouse"] | None = None
    contract: str | None = None
    quarantine_table: str | None = None
    max_bad_fraction: float = 0.05
    entity_params: dict[str, Any] | None = None
    as_of: datetime | None = None
    alias: str = DEFAULT_ALIAS
    warehouse: str | None = None
    feature_store: str | None = None
    tracking: str | None = None
    batch_rows: int = 50_000
    prediction_bounds: list[float] | None = None
    stream: bool = False
    dask_address: str | None = None
    dask_workers: int = 2
    partition_rows: int | None = None
    spark: str | None = None
    runner: str | None = None


__all__ = ["ScoringRequest"]
