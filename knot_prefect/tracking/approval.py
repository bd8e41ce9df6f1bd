"""A human approves or rejects a promotion through a Prefect input form.

``promote(..., approval="4h")`` pauses the flow run before the alias moves, with a form
(:class:`PromotionApproval`, a Prefect ``RunInput``) whose description shows the
evidence: both scores, the decision's reason and whatever the caller adds (a shadow
comparison, the latest drift). Approve or reject it in the Prefect UI, or through the
API (``resume_flow_run(flow_run_id, run_input={"approve": true, "reviewer": ...})``).
No answer within the time given rejects.

Examples:
    >>> print(evidence_markdown({"agreement": 0.97, "drifted features": "x1"}))
    | evidence | value |
    |---|---|
    | agreement | 0.97 |
    | drifted features | x1 |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.input import RunInput


class PromotionApproval(RunInput):
    """The form a reviewer answers: approve (or not), who, and why."""

    approve: bool = False
    reviewer: str = ""
    comment: str = ""


@dataclass(frozen=True)
class ApprovalOutcome:
    """What the reviewer answered.

    Attributes:
        approved: Whether the alias may move.
        reviewer: Who answered ("" when nobody did).
        comment: Their comment, or why nothing was answered.
    """

    approved: bool
    reviewer: str
    comment: str

    def describe(self) -> str:
        """One sentence: who approved or rejected, and why."""
        if not self.reviewer:
            return self.comment
        verb = "approved" if self.approved else "rejected"
        return f"{verb} by {self.reviewer}" + (f": {self.comment}" if self.comment else "")


def evidence_markdown(evidence: Mapping[str, Any]) -> str:
    """A Markdown table of the evidence shown to the reviewer."""
    rows = "\n".join(f"| {name} | {value} |" for name, value in evidence.items())
    return f"| evidence | value |\n|---|---|\n{rows}"


def ask_approval(
    title: str, evidence: Mapping[str, Any], timeout: timedelta, poll_seconds: int = 2
) -> ApprovalOutcome:
    """Pause the current flow run with :class:`PromotionApproval` until it is answered.

    Args:
        title: What is asked, e.g. ``"Promote churn v3 to @champion?"``.
        evidence: Shown in the form, one row each.
        timeout: How long to wait; no answer by then rejects.
        poll_seconds: How often the paused run checks for the answer.

    Returns:
        The answer; a rejection naming the timeout when none came.

    Raises:
        ConfigurationError: Called outside a flow run (nobody could answer).
    """
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run
    from prefect.states import Running

    from knot_prefect.errors import ConfigurationError

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise ConfigurationError(
            "approval= needs a flow run to pause: call promote from a Prefect flow, or "
            "leave approval out."
        )
    form = PromotionApproval.with_initial_data(
        description=f"### {title}\n\n{evidence_markdown(evidence)}\n\n"
        f"Approve or reject within {timeout}; no answer rejects.",
    )
    seconds = max(1, int(timeout.total_seconds()))
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=seconds,
                                poll_interval=min(poll_seconds, seconds))
    except FlowPauseTimeout:
        # Nobody answered: the run goes on, and the alias stays where it is.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(context.flow_run.id, Running(), force=True)
        return ApprovalOutcome(False, "", f"no answer within {timeout}")
    return ApprovalOutcome(bool(answer.approve), answer.reviewer or "someone", answer.comment)


__all__ = ["ApprovalOutcome", "PromotionApproval", "ask_approval", "evidence_markdown"]
