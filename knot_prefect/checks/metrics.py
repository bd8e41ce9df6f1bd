"""Metrics of a frame, each a plain number: feed them to the ``check`` task.

Every function takes a pandas, polars or Dask DataFrame (Dask metrics are computed
on the cluster) and names the column and the columns that exist when a column is
missing.

Examples:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, None, 3.0]})
    >>> row_count(frame)
    3
    >>> round(null_fraction(frame, "x"), 3)
    0.333
    >>> column_max(frame, "x")
    3.0
    >>> metric(lambda f: f["x"].sum(), frame)
    4.0
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from knot_prefect.errors import KnotError


class MetricError(KnotError, ValueError):
    """A metric cannot be computed; the message names the column and the reason."""


def _kind(frame: Any) -> str:
    module = type(frame).__module__.split(".")[0]
    if module == "pandas":
        return "pandas"
    if module == "polars":
        return "polars"
    if module in {"dask", "dask_expr"}:
        return "dask"
    raise TypeError(
        f"Cannot compute a metric of a {type(frame).__module__}.{type(frame).__name__}: "
        "pass a pandas, polars or Dask DataFrame."
    )


def _column(frame: Any, column: str) -> Any:
    columns = [str(c) for c in frame.columns]
    if column not in columns:
        raise MetricError(
            f"Column {column!r} is not in the frame; its columns are {', '.join(columns)}."
        )
    return frame[column]


def _compute(value: Any) -> Any:
    return value.compute() if hasattr(value, "compute") else value


def _number(value: Any, what: str) -> float:
    value = _compute(value)
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"{what} is {value!r}, which is not a number.") from exc


def row_count(frame: Any) -> int:
    """The number of rows."""
    if _kind(frame) == "polars":
        return int(frame.height)
    return int(_compute(frame.shape[0]))


def null_fraction(frame: Any, column: str) -> float:
    """The fraction of null values in ``column`` (0.0 for an empty frame)."""
    series = _column(frame, column)
    rows = row_count(frame)
    if rows == 0:
        return 0.0
    nulls = series.null_count() if _kind(frame) == "polars" else series.isna().sum()
    return _number(nulls, f"The null count of {column!r}") / rows


def column_min(frame: Any, column: str) -> float:
    """The smallest value of ``column`` (NaN when it has no values)."""
    return _number(_column(frame, column).min(), f"The minimum of {column!r}")


def column_max(frame: Any, column: str) -> float:
    """The largest value of ``column`` (NaN when it has no values)."""
    return _number(_column(frame, column).max(), f"The maximum of {column!r}")


def column_mean(frame: Any, column: str) -> float:
    """The mean of ``column``, nulls ignored."""
    return _number(_column(frame, column).mean(), f"The mean of {column!r}")


def column_std(frame: Any, column: str) -> float:
    """The sample standard deviation of ``column`` (ddof=1), nulls ignored."""
    return _number(_column(frame, column).std(), f"The standard deviation of {column!r}")


def freshness(frame: Any, column: str, now: dt.datetime | None = None) -> float:
    """The age in seconds of the newest timestamp in ``column``.

    Args:
        frame: The data.
        column: A timestamp column; naive timestamps are read as UTC.
        now: The reference time (default: now, UTC).

    Returns:
        Seconds between ``now`` and the newest timestamp (``inf`` when the column
        has no values, so an upper bound fails).
    """
    import pandas as pd

    newest = _compute(_column(frame, column).max())
    if newest is None or newest is pd.NaT or (isinstance(newest, float) and math.isnan(newest)):
        return math.inf
    try:
        stamp = pd.Timestamp(newest)
    except (TypeError, ValueError) as exc:
        raise MetricError(
            f"Column {column!r} holds {type(newest).__name__} values, not timestamps."
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    reference = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    if reference.tzinfo is None:
        reference = reference.tz_localize("UTC")
    return float((reference - stamp).total_seconds())


def metric(function: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Any function returning a number, as a metric.

    Args:
        function: Called with ``*args`` and ``**kwargs``.

    Returns:
        Its result as a float.
    """
    name = getattr(function, "__name__", repr(function))
    return _number(function(*args, **kwargs), f"The result of {name}")
