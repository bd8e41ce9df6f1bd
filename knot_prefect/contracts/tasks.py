"""The ``validate`` task: check a frame against a contract under a failure policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.contracts.errors import ContractValidationError
from knot_prefect.contracts.report import ValidationReport

if TYPE_CHECKING:
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.warehouses.base import Warehouse

FailurePolicy = Literal["raise", "warn", "quarantine"]
FAILURE_POLICIES: tuple[str, ...] = get_args(FailurePolicy)
Frame = TypeVar("Frame")


def _check_arguments(
    on_failure: str,
    max_bad_fraction: float,
    quarantine: tuple[Warehouse | str, str] | None,
) -> None:
    if on_failure not in FAILURE_POLICIES:
        raise ValueError(
            f"Unknown on_failure={on_failure!r}: use one of {', '.join(FAILURE_POLICIES)}."
        )
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction={max_bad_fraction!r} must be between 0.0 and 1.0.")
    if on_failure == "quarantine":
        if quarantine is None or len(quarantine) != 2:
            raise ValueError(
                "on_failure='quarantine' needs quarantine=(warehouse, 'table'): the "
                "Warehouse block (or its document name) and the quarantine table."
            )
    elif quarantine is not None:
        raise ValueError(
            f"quarantine=... is only used with on_failure='quarantine', not {on_failure!r}."
        )


def validate_frame(
    data: Frame,
    contract: DataContract | str,
    on_failure: FailurePolicy = "raise",
    max_bad_fraction: float = 0.0,
    quarantine: tuple[Warehouse | str, str] | None = None,
    sample_rows: int = 10,
    publish_report: bool = True,
) -> tuple[Frame, ValidationReport]:
    """Validate a frame and apply the failure policy; returns the rows and the report.

    This is the body of the :func:`validate` task, for callers that also want the
    report (flow templates record the contract version with their outputs).

    Args:
        data: A pandas, polars or Dask DataFrame.
        contract: A ``DataContract`` block or its document name.
        on_failure: What to do with failures, see :func:`validate`.
        max_bad_fraction: Under ``quarantine``, the largest tolerated fraction of
            failing rows.
        quarantine: ``(warehouse, table)`` for failing rows under ``quarantine``.
        sample_rows: The most failing rows shown in the artifact.
        publish_report: Leave the artifact and event (and log line).

    Returns:
        The rows to go on with and the report.

    Raises:
        ContractValidationError: Under ``raise`` when any check fails; under
            ``quarantine`` when the bad fraction exceeds ``max_bad_fraction`` (after
            the failing rows were written).
        QuarantineError: When the quarantine table cannot take the rows; nothing
            is written and nothing is returned.
    """
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.contracts.engine import summarize
    from knot_prefect.contracts.frames import validate_data
    from knot_prefect.contracts.publishing import mask_records, publish
    from knot_prefect.contracts.quarantine import quarantine_frame, write_quarantine
    from knot_prefect.run_context import current_flow_run_id

    _check_arguments(on_failure, max_bad_fraction, quarantine)
    block = resolve_block(contract, DataContract)
    schema = block.schema()
    sensitive = list(block.sensitive_columns)
    validated = validate_data(data, schema, on_failure, sample_rows)
    report = ValidationReport(
        contract=block.contract_name,
        version=block.version,
        policy=on_failure,
        total_rows=validated.total_rows,
        bad_rows=validated.bad_rows,
        checks=summarize(schema, validated.failure_cases, sensitive),
        # Masked here, so the report can be logged or raised anywhere.
        sample=mask_records(validated.sample, sensitive),
        flow_run_id=current_flow_run_id(),
    )
    if report.passed:
        if publish_report:
            publish(report, sensitive)
        return validated.output, report

    if on_failure == "quarantine" and validated.quarantine_rows is not None:
        warehouse_ref, table = quarantine  # type: ignore[misc]
        warehouse = resolve_block(warehouse_ref, Warehouse)
        rows = quarantine_frame(
            validated.quarantine_rows, report.contract, report.version, report.flow_run_id
        )
        report.quarantine_table = table
        try:
            written = write_quarantine(warehouse, table, rows, report.contract)
        except Exception:
            if publish_report:
                publish(report, sensitive)
            raise
        report.quarantined_rows = written.rows
    if publish_report:
        publish(report, sensitive)

    if on_failure == "raise":
        raise ContractValidationError(
            report.describe_failures()
            + "\nFix the data or the contract, or validate with on_failure='warn' or "
            "'quarantine'.",
            report,
        )
    if on_failure == "quarantine" and report.bad_fraction > max_bad_fraction:
        raise ContractValidationError(
            report.describe_failures()
            + f"\n{report.quarantined_rows} failing rows are in quarantine table "
            f"{report.quarantine_table!r}; the bad fraction {report.bad_fraction:.2%} "
            f"exceeds max_bad_fraction={max_bad_fraction:.2%}.",
            report,
        )
    return validated.output, report


@task(name="validate", cache_policy=NO_CACHE)
def validate(
    df: Any,
    contract: DataContract | str,
    on_failure: FailurePolicy = "raise",
    max_bad_fraction: float = 0.0,
    quarantine: tuple[Warehouse | str, str] | None = None,
    sample_rows: int = 10,
) -> Any:
    """Validate a frame against a data contract and return the rows to go on with.

    Validation is lazy: every failed check is found in one pass. Each call leaves a
    table artifact keyed ``contract-<name>`` (checks, failure counts, a sample of
    failing rows with sensitive columns masked) and emits ``knot.contract.passed`` or
    ``knot.contract.failed`` with the counts.

    Args:
        df: A pandas, polars or Dask DataFrame (Dask is validated partition by
            partition; uniqueness checks then hold within each partition).
        contract: A ``DataContract`` block or its document name.
        on_failure: ``"raise"`` fails the task listing each failed check, its column
            and count; ``"warn"`` logs, reports and returns every row;
            ``"quarantine"`` writes failing rows (with the checks and columns they
            failed and the flow-run id) to the quarantine table, returns the valid
            rows, and fails only when the bad fraction exceeds ``max_bad_fraction``.
        max_bad_fraction: The largest tolerated fraction of failing rows under
            ``quarantine`` (0.0 to 1.0).
        quarantine: ``(warehouse, table)``: a Warehouse block or its document name,
            and the quarantine table; required by ``quarantine``.
        sample_rows: The most failing rows shown in the artifact.

    Returns:
        The validated frame (``raise``), every row (``warn``) or the valid rows
        (``quarantine``), of the same kind as ``df``.

    Raises:
        ContractValidationError: When the policy says the data is not usable.
        QuarantineError: When the quarantine table cannot take the failing rows.

    Examples:
        >>> import pandas as pd
        >>> from knot_prefect.blocks.contract import DataContract
        >>> contract = DataContract(
        ...     schema_yaml="columns:\\n  a:\\n    dtype: int64\\n    ge: 0\\n"
        ... )
        >>> output, report = validate_frame(pd.DataFrame({"a": [1, 2]}), contract)
        >>> output["a"].tolist(), report.passed
        ([1, 2], True)
    """
    output, _ = validate_frame(df, contract, on_failure, max_bad_fraction, quarantine, sample_rows)
    return output
