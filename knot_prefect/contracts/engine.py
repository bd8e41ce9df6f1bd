"""Validate a pandas frame against a Pandera schema and find the rows that fail.

Validation is lazy (Pandera collects every failure before raising), so one pass
gives every failed check. Failures tied to rows are mapped to row positions; a
failure that is not (a missing column, a wrong dtype, a check on an aggregate) counts
against every row, since no row can be shown to satisfy the contract.

Examples:
    >>> import pandas as pd
    >>> import pandera.pandas as pa
    >>> schema = pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0))})
    >>> result = run_schema(pd.DataFrame({"a": [1, -1, 2]}), schema)
    >>> result.bad_positions.tolist()
    [1]
    >>> [(o.check, o.failures) for o in summarize(schema, [result.failure_cases])]
    [("dtype('int64')", 0), ('not_nullable', 0), ('greater_than_or_equal_to(0)', 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from knot_prefect.contracts.report import MASK, CheckOutcome

if TYPE_CHECKING:
    from pandera.api.pandas.container import DataFrameSchema

# Columns added to quarantined rows.
FAILED_CHECKS = "knot_failed_checks"
FAILED_COLUMNS = "knot_failed_columns"
EXAMPLES_PER_CHECK = 3
COLUMN_PRESENCE_CHECKS = ("column_in_dataframe", "column_in_schema")


@dataclass
class FrameResult:
    """Validation of one pandas frame (or one partition of a larger frame).

    Attributes:
        total_rows: Rows validated.
        output: Pandera's validated frame when every check passed, else the input.
        failure_cases: Pandera's failure cases with a ``position`` column (row
            position, -1 when not tied to a row); None when every check passed.
        bad_positions: Sorted positions of failing rows.
        whole_frame: True when a failure is not tied to rows (every row is bad).
    """

    total_rows: int
    output: pd.DataFrame
    failure_cases: pd.DataFrame | None = None
    bad_positions: np.ndarray[Any, Any] | None = None
    whole_frame: bool = False

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return self.failure_cases is None

    @property
    def bad_rows(self) -> int:
        """How many rows failed."""
        if self.passed:
            return 0
        if self.whole_frame:
            return self.total_rows
        return 0 if self.bad_positions is None else len(self.bad_positions)

    def valid_mask(self) -> np.ndarray[Any, Any]:
        """A boolean mask of the rows that passed every check."""
        mask = np.ones(self.total_rows, dtype=bool)
        if self.whole_frame:
            mask[:] = False
        elif self.bad_positions is not None:
            mask[self.bad_positions] = False
        return mask


def needs_coercion(schema: DataFrameSchema) -> bool:
    """Whether validating changes the data (a column or the schema coerces dtypes)."""
    return bool(schema.coerce) or any(column.coerce for column in schema.columns.values())


def run_schema(frame: pd.DataFrame, schema: DataFrameSchema) -> FrameResult:
    """Validate ``frame`` lazily and map failures to row positions.

    Args:
        frame: The data. Its index may be anything; positions are what is reported.
        schema: The Pandera schema.

    Returns:
        The result; never raises for data that breaks the contract.
    """
    from pandera.errors import SchemaErrors

    # Failure cases name rows by index label; a unique index maps labels to positions.
    checked = frame if frame.index.is_unique else frame.reset_index(drop=True)
    try:
        output = schema.validate(checked, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        if checked is not frame:
            output.index = frame.index
        return FrameResult(total_rows=len(frame), output=output)
    return _from_failure_cases(frame, checked, cases)


def _from_failure_cases(
    frame: pd.DataFrame, checked: pd.DataFrame, cases: pd.DataFrame
) -> FrameResult:
    cases = cases[["check", "column", "failure_case", "index"]].copy()
    cases["check"] = cases["check"].astype(str)
    cases["column"] = cases["column"].astype(object).where(cases["column"].notna(), None)
    # For a missing (or unexpected) column Pandera names the schema as the column
    # and the column as the failure case; report the column itself.
    about_columns = cases["check"].isin(COLUMN_PRESENCE_CHECKS).to_numpy()
    if about_columns.any():
        cases.loc[about_columns, "column"] = cases.loc[about_columns, "failure_case"].astype(str)
    tied = cases["index"].notna().to_numpy()
    positions = np.full(len(cases), -1, dtype=np.int64)
    if tied.any():
        positions[tied] = checked.index.get_indexer(pd.Index(cases["index"].to_numpy()[tied]))
    cases["position"] = positions
    cases = cases.drop(columns="index")
    whole_frame = bool((positions < 0).any())
    bad = np.unique(positions[positions >= 0])
    return FrameResult(
        total_rows=len(frame),
        output=frame,
        failure_cases=cases,
        bad_positions=bad,
        whole_frame=whole_frame,
    )


def valid_rows(frame: pd.DataFrame, result: FrameResult, schema: DataFrameSchema) -> pd.DataFrame:
    """The rows of ``frame`` that passed, validated (and coerced) by the schema.

    Args:
        frame: The frame that was validated.
        result: Its validation result.
        schema: The schema, used again only when it coerces dtypes.

    Returns:
        The valid rows.
    """
    if result.passed:
        return result.output
    valid = frame[result.valid_mask()]
    if needs_coercion(schema) and len(valid):
        valid = schema.validate(valid, lazy=True)
    return valid


def schema_checks(schema: DataFrameSchema) -> list[tuple[str, str | None]]:
    """Every check a schema runs, named the way Pandera names failures.

    Args:
        schema: The Pandera schema.

    Returns:
        ``(check, column)`` pairs in schema order.
    """
    pairs: list[tuple[str, str | None]] = []
    for name, column in schema.columns.items():
        column_name = str(name)
        if column.dtype is not None:
            pairs.append((f"dtype('{column.dtype}')", column_name))
        if not column.nullable:
            pairs.append(("not_nullable", column_name))
        if column.unique:
            pairs.append(("field_uniqueness", column_name))
        for check in column.checks:
            pairs.append((str(check.error or check.name), column_name))
    frame_name = str(schema.name) if schema.name is not None else None
    if schema.unique:
        pairs.append(("multiple_fields_uniqueness", frame_name))
    for check in schema.checks:
        pairs.append((str(check.error or check.name), frame_name))
    return pairs


def summarize(
    schema: DataFrameSchema,
    failure_cases: Iterable[pd.DataFrame | None],
    sensitive_columns: Sequence[str] = (),
) -> list[CheckOutcome]:
    """Combine failure cases (of one frame or many partitions) into one outcome per check.

    Args:
        schema: The schema whose checks are listed.
        failure_cases: Failure cases from :func:`run_schema` results (None = passed).
        sensitive_columns: Columns whose failing values are masked.

    Returns:
        One outcome per check, schema checks first, then any other failure Pandera
        reported (e.g. a missing column).
    """
    frames = [cases for cases in failure_cases if cases is not None and len(cases)]
    order = list(dict.fromkeys(schema_checks(schema)))
    if not frames:
        return [CheckOutcome(check=check, column=column) for check, column in order]
    cases = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    sensitive = set(sensitive_columns)
    stats: dict[tuple[str, str | None], CheckOutcome] = {}
    for (check, column), group in cases.groupby(["check", "column"], dropna=False, sort=False):
        column_name = None if column is None or column != column else str(column)
        values = group["failure_case"].drop_duplicates().head(EXAMPLES_PER_CHECK)
        examples = tuple(
            MASK if column_name in sensitive else str(value) for value in values.tolist()
        )
        stats[(str(check), column_name)] = CheckOutcome(
            check=str(check),
            column=column_name,
            failures=len(group),
            whole_frame=bool((group["position"] < 0).any()),
            examples=examples,
        )
    outcomes = [
        stats.pop(pair) if pair in stats else CheckOutcome(check=pair[0], column=pair[1])
        for pair in order
    ]
    return outcomes + list(stats.values())


def annotate_bad_rows(frame: pd.DataFrame, result: FrameResult) -> pd.DataFrame:
    """The failing rows of ``frame`` with the checks and columns each one failed.

    Args:
        frame: The validated frame.
        result: Its validation result.

    Returns:
        The failing rows (index reset) plus :data:`FAILED_CHECKS` and
        :data:`FAILED_COLUMNS`; empty when every row passed.
    """
    if result.passed or result.failure_cases is None:
        return frame.iloc[0:0].assign(**{FAILED_CHECKS: "", FAILED_COLUMNS: ""})
    cases = result.failure_cases
    column_label = cases["column"].astype(str)
    labels = cases["check"] + " [" + column_label + "]"
    tied = (cases["position"] >= 0).to_numpy()
    whole_checks = "; ".join(dict.fromkeys(labels[~tied]))
    whole_columns = list(dict.fromkeys(column_label[~tied]))

    positions = np.arange(len(frame)) if result.whole_frame else result.bad_positions
    assert positions is not None
    # A plain loop: a few failures per row, and pandas' per-group joins cost ~50 us
    # a group (a second for 1% of a million rows).
    row_checks: dict[int, dict[str, None]] = {}
    row_columns: dict[int, dict[str, None]] = {}
    for position, label, column in zip(
        cases["position"][tied].tolist(),
        labels[tied].tolist(),
        column_label[tied].tolist(),
        strict=True,
    ):
        row_checks.setdefault(position, {})[label] = None
        row_columns.setdefault(position, {})[column] = None
    checks = []
    columns = []
    for position in positions.tolist():
        found_checks = list(row_checks.get(position, ()))
        found_columns = list(row_columns.get(position, ()))
        if whole_checks:
            found_checks.append(whole_checks)
            found_columns += [c for c in whole_columns if c not in found_columns]
        checks.append("; ".join(found_checks))
        columns.append(", ".join(found_columns))
    rows = frame.iloc[positions].reset_index(drop=True)
    return rows.assign(**{FAILED_CHECKS: checks, FAILED_COLUMNS: columns})


def sample_bad_rows(
    frame: pd.DataFrame,
    result: FrameResult,
    limit: int,
    sensitive_columns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Up to ``limit`` failing rows as records, sensitive columns masked.

    Args:
        frame: The validated frame.
        result: Its validation result.
        limit: The most rows to return.
        sensitive_columns: Columns replaced by ``***``.

    Returns:
        Records (JSON-friendly values) of failing rows.
    """
    if result.passed or limit <= 0:
        return []
    positions = np.arange(min(limit, len(frame))) if result.whole_frame else result.bad_positions
    assert positions is not None
    return records(frame.iloc[positions[:limit]], sensitive_columns)


def records(frame: pd.DataFrame, sensitive_columns: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows as JSON-friendly records with sensitive columns masked."""
    masked = mask_columns(frame, sensitive_columns)
    return [
        {str(key): _plain(value) for key, value in row.items()}
        for row in masked.to_dict(orient="records")
    ]


def mask_columns(frame: pd.DataFrame, sensitive_columns: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` whose sensitive columns hold ``***`` instead of values."""
    present = [column for column in sensitive_columns if column in frame.columns]
    if not present:
        return frame
    return frame.assign(**{column: MASK for column in present})


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, np.generic):
        return _plain(value.item())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
