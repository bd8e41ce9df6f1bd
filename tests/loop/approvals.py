"""Promotions that ask for approval, run as a flow in a process of its own.

Usage: ``python approvals.py ARGUMENTS_JSON``; prints the decisions as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow


@flow(name="knot-test-approvals")
def approvals(model: str, tracking: str, data_path: str) -> list[dict[str, Any]]:
    import pandas as pd

    from knot_prefect.tasks import promote

    data = pd.read_parquet(data_path)
    contested = {"metric": "accuracy", "data": data, "target": "label", "tracking": tracking}
    decisions = [
        promote(model, 1, "champion", tracking=tracking, approval="2m",
                evidence={"shadow agreement": "0.97 over 500 requests"}),
        promote(model, 2, "champion", approval="2m", **contested),
        promote(model, 2, "champion", approval="3s", **contested),  # nobody answers
    ]
    return [{"decision": d.decision, "reason": d.reason, "approval": d.approval}
            for d in decisions]


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print("DECISIONS " + json.dumps(approvals(**arguments)))
