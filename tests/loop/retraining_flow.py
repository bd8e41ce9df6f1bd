"""A light stand-in for retraining, deployed with a drift trigger: it writes down its call."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run


@flow(name="knot-record-retraining")
def record_retraining(model_name: str, out_dir: str) -> str:
    """Write the drifted model's name to ``out_dir/<flow run id>.json``."""
    path = Path(out_dir) / f"{flow_run.id}.json"
    path.write_text(json.dumps({"model_name": model_name}))
    return str(path)
