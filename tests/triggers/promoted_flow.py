"""A light flow deployed with a promotion trigger: it writes down what it was given."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run


@flow(name="knot-record-promotion")
def record_promotion(model_name: str, alias: str, model_version: int, out_dir: str) -> str:
    """Write the promoted model's name, alias and version to ``out_dir/<flow run id>.json``."""
    path = Path(out_dir) / f"{flow_run.id}.json"
    path.write_text(json.dumps(
        {"model_name": model_name, "alias": alias, "model_version": model_version}
    ))
    return str(path)
