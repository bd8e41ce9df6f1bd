"""Errors of data contracts; each message names the contract and what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.errors import ConfigurationError, KnotError

if TYPE_CHECKING:
    from knot_prefect.contracts.report import ValidationReport


class ContractDefinitionError(ConfigurationError):
    """A contract's YAML or model reference cannot be turned into a Pandera schema.

    Attributes:
        line: The 1-based line of the YAML that is wrong, when known.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class ContractValidationError(KnotError):
    """A frame broke its contract under the ``raise`` policy, or too many rows failed.

    Attributes:
        report: What was checked and what failed.
    """

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


class QuarantineError(KnotError):
    """Failing rows cannot be written to the quarantine table; nothing was written."""
