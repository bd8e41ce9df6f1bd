"""Publish a validation: a keyed Prefect table artifact, a Prefect event and a log line.

The artifact key is the same for every validation of a contract
(``contract-<name>``), so the Prefect UI shows the contract's history; the event
(``knot.contract.passed`` / ``knot.contract.failed``) carries the counts so
automations can notify.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from knot_prefect.contracts.report import MASK, ValidationReport
from knot_prefect.run_context import events_wanted, in_run, run_logger, slugify

PASSED_EVENT = "knot.contract.passed"
FAILED_EVENT = "knot.contract.failed"


def artifact_key(contract_name: str) -> str:
    """The artifact key of a contract: ``contract-<slug>``."""
    return f"contract-{slugify(contract_name)}"


def mask_records(
    rows: Sequence[dict[str, Any]], sensitive_columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Records with the values of sensitive columns replaced by ``***``."""
    sensitive = set(sensitive_columns)
    return [
        {key: MASK if key in sensitive else value for key, value in row.items()} for row in rows
    ]


def check_status(report: ValidationReport, failed: bool) -> str:
    """The status of a check's artifact row under the report's policy."""
    if not failed:
        return "passed"
    if report.policy == "warn":
        return "warning"
    if report.policy == "quarantine" and report.quarantined_rows == report.bad_rows:
        return "quarantined"
    return "failed"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Records as a markdown table (empty string for no rows)."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def describe(report: ValidationReport, sample: Sequence[dict[str, Any]]) -> str:
    """The artifact's markdown description: headline, counts and a sample of bad rows."""
    parts = [
        report.headline(),
        "",
        f"- policy: `{report.policy}`",
        f"- rows: {report.total_rows}, failing: {report.bad_rows}",
    ]
    if report.quarantine_table:
        parts.append(
            f"- quarantined: {report.quarantined_rows} rows in `{report.quarantine_table}`"
        )
    if report.flow_run_id:
        parts.append(f"- flow run: `{report.flow_run_id}`")
    if sample:
        parts += [
            "",
            "Sample of failing rows (sensitive columns masked):",
            "",
            markdown_table(sample),
        ]
    return "\n".join(parts)


def publish(report: ValidationReport, sensitive_columns: Sequence[str]) -> None:
    """Leave the validation's artifact, event and log line.

    The artifact is created inside a flow or task run (Prefect ties artifacts to
    runs); the event inside a run or when a Prefect API is configured; the log line
    always. Publishing is best effort: an
    unreachable Prefect API is logged as a warning and does not change the outcome.

    Args:
        report: The validation report (its sample is masked here again).
        sensitive_columns: Columns to mask in the sample.
    """
    from prefect.artifacts import create_table_artifact
    from prefect.events import emit_event

    logger = run_logger("knot_prefect.contracts")
    sample = mask_records(report.sample, sensitive_columns)
    table = [
        {
            "check": outcome.check,
            "column": outcome.column,
            "failures": outcome.failures,
            "scope": "whole frame" if outcome.whole_frame else "rows",
            "status": check_status(report, not outcome.passed),
            "examples": ", ".join(outcome.examples),
        }
        for outcome in report.checks
    ]
    if report.passed:
        logger.info(report.headline())
    else:
        logger.warning(report.describe_failures())
    slug = slugify(report.contract)
    if in_run():
        try:
            create_table_artifact(
                table=table,
                key=artifact_key(report.contract),
                description=describe(report, sample),
            )
        except Exception as exc:  # the data outcome must not depend on the UI
            logger.warning("Could not create the artifact of contract %r: %s", report.contract, exc)
    if not events_wanted():
        return
    emit_event(
        event=PASSED_EVENT if report.passed else FAILED_EVENT,
        resource={
            "prefect.resource.id": f"knot.contract.{slug}",
            "prefect.resource.name": report.contract,
            "knot.contract.version": report.version,
        },
        payload=report.counts(),
    )
