"""Validate pandas, polars and Dask frames with one engine and one kind of result.

pandas frames are validated directly. polars frames are converted to pandas for
Pandera's pandas API (contracts hold pandas-API schemas) and the valid rows are taken
from the original polars frame, so polars dtypes are kept. Dask frames are validated
partition by partition on the cluster; the partitions' failures are combined into one
result, and the rows returned stay on the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from knot_prefect.contracts.engine import (
    FrameResult,
    annotate_bad_rows,
    run_schema,
    sample_bad_rows,
    valid_rows,
)

if TYPE_CHECKING:
    from pandera.api.pandas.container import DataFrameSchema


@dataclass
class Validated:
    """A validated frame of any supported kind.

    Attributes:
        total_rows: Rows validated.
        bad_rows: Rows that failed.
        failure_cases: Failure cases per frame or partition (None where all passed).
        sample: A few failing rows as records (not yet masked).
        output: What ``validate`` returns: all rows (``raise``/``warn``) or only the
            valid rows (``quarantine``), as the input's kind of frame.
        quarantine_rows: Failing rows with the checks they failed (``quarantine``).
    """

    total_rows: int
    bad_rows: int
    failure_cases: list[pd.DataFrame | None]
    sample: list[dict[str, Any]]
    output: Any
    quarantine_rows: pd.DataFrame | None = None
    partitions: int = field(default=1)


def frame_kind(data: Any) -> str:
    """``"pandas"``, ``"polars"`` or ``"dask"``.

    Raises:
        TypeError: For any other type, naming it.
    """
    module = type(data).__module__.split(".")[0]
    if isinstance(data, pd.DataFrame):
        return "pandas"
    if module == "polars" and type(data).__name__ == "DataFrame":
        return "polars"
    if module in {"dask", "dask_expr"} and hasattr(data, "to_delayed"):
        return "dask"
    raise TypeError(
        f"Cannot validate a {type(data).__module__}.{type(data).__name__}: pass a pandas, "
        "polars or Dask DataFrame (collect a polars LazyFrame first)."
    )


def _validate_pandas(
    frame: pd.DataFrame, schema: DataFrameSchema, policy: str, sample_limit: int
) -> tuple[FrameResult, pd.DataFrame, list[dict[str, Any]], pd.DataFrame | None]:
    result = run_schema(frame, schema)
    sample = sample_bad_rows(frame, result, sample_limit)
    if policy != "quarantine" or result.passed:
        return result, result.output, sample, None
    return result, valid_rows(frame, result, schema), sample, annotate_bad_rows(frame, result)


def validate_data(
    data: Any, schema: DataFrameSchema, policy: str, sample_limit: int = 10
) -> Validated:
    """Validate a pandas, polars or Dask frame.

    Args:
        data: The frame.
        schema: The contract's Pandera schema.
        policy: ``raise``, ``warn`` or ``quarantine``.
        sample_limit: The most failing rows to keep as a sample.

    Returns:
        What was found and what to return.
    """
    kind = frame_kind(data)
    if kind == "dask":
        return _validate_dask(data, schema, policy, sample_limit)
    frame = data if kind == "pandas" else data.to_pandas()
    result, output, sample, bad = _validate_pandas(frame, schema, policy, sample_limit)
    if kind == "polars":
        import polars as pl

        # The polars frame itself is returned so its dtypes are kept.
        output = data.filter(pl.Series(result.valid_mask())) if bad is not None else data
    return Validated(
        total_rows=result.total_rows,
        bad_rows=result.bad_rows,
        failure_cases=[result.failure_cases],
        sample=sample,
        output=output,
        quarantine_rows=bad,
    )


def _validate_partition(
    frame: pd.DataFrame, schema: DataFrameSchema, policy: str, sample_limit: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    result, output, sample, bad = _validate_pandas(frame, schema, policy, sample_limit)
    summary = {
        "total_rows": result.total_rows,
        "bad_rows": result.bad_rows,
        "failure_cases": result.failure_cases,
        "sample": sample,
        "quarantine_rows": bad,
    }
    return output, summary


def _validate_dask(data: Any, schema: DataFrameSchema, policy: str, sample_limit: int) -> Validated:
    import dask
    import dask.dataframe as dd

    schema_ref = dask.delayed(schema)
    parts = [
        dask.delayed(_validate_partition)(part, schema_ref, policy, sample_limit)
        for part in data.to_delayed()
    ]
    # Keep each partition's result on the cluster; only the summaries travel.
    parts = list(dask.persist(*parts))
    summaries: Sequence[dict[str, Any]] = dask.compute(*[part[1] for part in parts])
    output = dd.from_delayed([part[0] for part in parts], meta=data._meta, verify_meta=False)
    sample: list[dict[str, Any]] = []
    for summary in summaries:
        sample.extend(summary["sample"][: max(0, sample_limit - len(sample))])
    bad_frames = [s["quarantine_rows"] for s in summaries if s["quarantine_rows"] is not None]
    quarantine_rows = pd.concat(bad_frames, ignore_index=True) if bad_frames else None
    return Validated(
        total_rows=sum(s["total_rows"] for s in summaries),
        bad_rows=sum(s["bad_rows"] for s in summaries),
        failure_cases=[s["failure_cases"] for s in summaries],
        sample=sample,
        output=output,
        quarantine_rows=quarantine_rows,
        partitions=len(parts),
    )
