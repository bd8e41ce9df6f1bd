"""A promotion waiting for approval, run as a flow in a process of its own.

Usage: ``python approval_flow.py MODEL TRACKING``; prints the decision as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow


@flow(name="knot-test-ui-approval")
def approval_in_the_ui(model: str, tracking: str) -> dict[str, Any]:
    from knot_prefect.tasks import promote

    decision = promote(model, 1, "champion", tracking=tracking, approval="5m",
                       evidence={"drift": "x1 PSI 0.31 (error) in 3 monitoring runs"})
    return {"decision": decision.decision, "approval": decision.approval}


if __name__ == "__main__":
    print("DECISION " + json.dumps(approval_in_the_ui(*sys.argv[1:3])))
