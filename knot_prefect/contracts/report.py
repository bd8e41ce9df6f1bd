"""What a validation found: the checks, their failure counts and a sample of bad rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MASK = "***"


@dataclass(frozen=True)
class CheckOutcome:
    """One check of a contract and how often it failed.

    Attributes:
        check: The check as Pandera names it (e.g. ``greater_than_or_equal_to(0)``).
        column: The column checked, or the schema's name for frame-wide checks.
        failures: How many failure cases Pandera reported (0 when it passed).
        whole_frame: True when the failure is not tied to rows (a missing column, a
            wrong dtype, a check on an aggregate): it counts against every row.
        examples: A few failing values, masked for sensitive columns.
    """

    check: str
    column: str | None
    failures: int = 0
    whole_frame: bool = False
    examples: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the check had no failures."""
        return self.failures == 0


@dataclass
class ValidationReport:
    """The result of validating one frame against one contract.

    Attributes:
        contract: The contract's name.
        version: The contract's version.
        policy: ``raise``, ``warn`` or ``quarantine``.
        total_rows: Rows in the frame.
        bad_rows: Rows that failed at least one check (all rows when a failure is
            not tied to rows).
        checks: Every check of the contract, with its failure count.
        sample: Up to a few failing rows, sensitive columns masked (``***``).
        quarantined_rows: Rows written to the quarantine table.
        quarantine_table: The quarantine table, when used.
        flow_run_id: The flow run that validated, when inside one.
    """

    contract: str
    version: str
    policy: str
    total_rows: int
    bad_rows: int = 0
    checks: list[CheckOutcome] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    quarantined_rows: int = 0
    quarantine_table: str | None = None
    flow_run_id: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(outcome.passed for outcome in self.checks)

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        """The checks that failed."""
        return [outcome for outcome in self.checks if not outcome.passed]

    @property
    def bad_fraction(self) -> float:
        """Bad rows over total rows (0.0 for an empty frame)."""
        return self.bad_rows / self.total_rows if self.total_rows else 0.0

    def headline(self) -> str:
        """One line saying what happened."""
        if self.passed:
            return (
                f"Contract {self.contract!r} (version {self.version}) passed on "
                f"{self.total_rows} rows."
            )
        return (
            f"Contract {self.contract!r} (version {self.version}) failed "
            f"{len(self.failed_checks)} check(s) on {self.bad_rows} of {self.total_rows} "
            f"rows ({self.bad_fraction:.2%})."
        )

    def describe_failures(self) -> str:
        """The headline and one line per failed check: check, column and count."""
        lines = [self.headline()]
        for outcome in self.failed_checks:
            scope = " (whole frame)" if outcome.whole_frame else ""
            examples = f"; e.g. {', '.join(outcome.examples)}" if outcome.examples else ""
            if outcome.check == "column_in_dataframe":
                lines.append(f"  - column {outcome.column!r} is missing (column_in_dataframe)")
            elif outcome.check == "column_in_schema":
                lines.append(f"  - column {outcome.column!r} is not in the contract (strict)")
            else:
                lines.append(
                    f"  - check {outcome.check} on column {outcome.column!r}: "
                    f"{outcome.failures} failure(s){scope}{examples}"
                )
        return "\n".join(lines)

    def counts(self) -> dict[str, Any]:
        """Counts for events and logs."""
        return {
            "contract": self.contract,
            "version": self.version,
            "policy": self.policy,
            "total_rows": self.total_rows,
            "bad_rows": self.bad_rows,
            "valid_rows": self.total_rows - self.bad_rows,
            "quarantined_rows": self.quarantined_rows,
            "failed_checks": len(self.failed_checks),
            "failures": {
                f"{outcome.check}@{outcome.column}": outcome.failures
                for outcome in self.failed_checks
            },
        }
