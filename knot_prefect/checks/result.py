"""The result of a metric check and the error a failed ``error`` check raises."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from knot_prefect.errors import KnotError

Severity = Literal["warning", "error"]
SEVERITIES: tuple[str, ...] = get_args(Severity)


@dataclass(frozen=True)
class CheckResult:
    """A metric compared with its bounds.

    Attributes:
        name: The check's name (e.g. ``"auc"``).
        value: The metric's value.
        passed: Whether the value is within the bounds.
        severity: ``"warning"`` or ``"error"``.
        lower: The smallest allowed value, if any.
        upper: The largest allowed value, if any.
        equal: The required value, if any.
        message: What was compared, in words.

    Examples:
        >>> evaluate(0.62, "auc", lower=0.7).message
        'auc = 0.62 is below the lower bound 0.7'
        >>> evaluate(5, "rows", lower=1, upper=10).passed
        True
    """

    name: str
    value: float
    passed: bool
    severity: str
    lower: float | None = None
    upper: float | None = None
    equal: float | None = None
    message: str = ""

    @property
    def status(self) -> str:
        """``passed``, ``warning`` (failed warning check) or ``failed`` (failed error check)."""
        if self.passed:
            return "passed"
        return "warning" if self.severity == "warning" else "failed"

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict, with its status."""
        return {**asdict(self), "status": self.status}


class CheckFailedError(KnotError):
    """A check of severity ``error`` failed.

    Attributes:
        result: The failed check.
    """

    def __init__(self, result: CheckResult) -> None:
        super().__init__(
            f"Check {result.name!r} failed: {result.message}. The run stops here, before "
            "anything is published; fix the cause or change the bounds or the severity."
        )
        self.result = result


def evaluate(
    value: float,
    name: str,
    lower: float | None = None,
    upper: float | None = None,
    equal: float | None = None,
    severity: str = "warning",
    tolerance: float = 0.0,
) -> CheckResult:
    """Compare a value with its bounds (no side effects; the ``check`` task publishes).

    Args:
        value: The metric's value. NaN never passes a bound.
        name: The check's name.
        lower: The smallest allowed value (inclusive).
        upper: The largest allowed value (inclusive).
        equal: The required value (within ``tolerance``).
        severity: ``"warning"`` or ``"error"``.
        tolerance: Allowed absolute difference for ``equal``.

    Returns:
        The result.

    Raises:
        ValueError: For an unknown severity, no bound at all, or ``lower > upper``.
    """
    if severity not in SEVERITIES:
        raise ValueError(
            f"Check {name!r}: unknown severity {severity!r}; use 'warning' or 'error'."
        )
    if lower is None and upper is None and equal is None:
        raise ValueError(f"Check {name!r} needs at least one of lower=, upper= or equal=.")
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"Check {name!r}: lower={lower} is above upper={upper}.")
    value = float(value)
    problems = []
    if math.isnan(value):
        problems.append("is not a number")
    else:
        if lower is not None and value < lower:
            problems.append(f"is below the lower bound {lower}")
        if upper is not None and value > upper:
            problems.append(f"is above the upper bound {upper}")
        if equal is not None and abs(value - equal) > tolerance:
            problems.append(f"is not equal to {equal}")
    bounds = [
        f"{label} {bound}"
        for label, bound in (("lower", lower), ("upper", upper), ("equal", equal))
        if bound is not None
    ]
    message = (
        f"{name} = {value:g} " + " and ".join(problems)
        if problems
        else f"{name} = {value:g} is within bounds ({', '.join(bounds)})"
    )
    return CheckResult(
        name=name,
        value=value,
        passed=not problems,
        severity=severity,
        lower=lower,
        upper=upper,
        equal=equal,
        message=message,
    )
