"""Errors of data contracts; each message names the contract and what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knot_prefect.blocks.contract_yaml import ContractDefinitionError
from knot_prefect.errors import KnotError

__all__ = [
    "ContractDefinitionError",
    "ContractValidationError",
    "QuarantineError",
]

if TYPE_CHECKING:
    from knot_prefect.contracts.report import ValidationReport


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
