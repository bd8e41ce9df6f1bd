"""Promotions and rollbacks run as a flow in a process of their own.

The test process talks to a temporary Prefect API; this process's ``PREFECT_API_URL``
is the real server whose trigger service reacts to the events ``promote`` emits.

Usage: ``python promotions.py STEPS_JSON``, each step ``{"model", "version", "alias"}``
(a promotion) or ``{"model", "alias", "rollback": true}``; prints the outcomes as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow


@flow(name="knot-test-promotions")
def promotions(steps: list[dict[str, Any]], tracking: str, data_path: str) -> list[Any]:
    import pandas as pd

    from knot_prefect.tasks import promote, rollback

    data = pd.read_parquet(data_path)
    outcomes: list[Any] = []
    for step in steps:
        if step.get("rollback"):
            move = rollback(step["model"], step["alias"], tracking=tracking)
            outcomes.append({"rolled_back_to": move.to_version})
        else:
            decision = promote(step["model"], step["version"], step["alias"], metric="accuracy",
                               data=data, target="label", tracking=tracking)
            outcomes.append({"decision": decision.decision})
    return outcomes


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print("OUTCOMES " + json.dumps(promotions(**arguments)))
