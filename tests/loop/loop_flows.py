"""The flows the whole-loop test deploys or runs in a process of their own.

``retrain`` (run by the worker when drift triggers it) trains a new version on the
reference rows, stores its reference profile and names it ``challenger``; ``python
loop_flows.py ARGUMENTS_JSON`` runs ``compare_and_promote``, which pauses on the
approval form and prints the decision.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow


def labelled_rows(seed: int, count: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=count), rng.normal(size=count)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": (x1 + 0.3 * x2 > 0).astype("int64")})


@flow(name="knot-loop-retrain")
def retrain(model_name: str, tracking: str, seed: int) -> int:
    """Train, register and profile a new version of ``model_name``; it becomes challenger."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.monitoring.profile import build_profile
    from knot_prefect.monitoring.reference import save_reference_profile
    from knot_prefect.tasks.mlflow_registry import register_model
    from knot_prefect.tracking.aliases import set_alias
    from knot_prefect.tracking.runs import tracked_run

    block = MLflowTracking.load(tracking)
    data = labelled_rows(seed)
    features = data[["x1", "x2"]]
    estimator = LogisticRegression().fit(features, data["label"])
    with tracked_run(block, run_name="retraining"):
        info = mlflow.sklearn.log_model(
            estimator, name="model", pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
            signature=infer_signature(features, estimator.predict(features)))
    version = int(register_model(info.model_uri, model_name, block).version)
    save_reference_profile(block, model_name, version, build_profile(features))
    set_alias(block.get_client(), model_name, "challenger", version)
    return version


@flow(name="knot-loop-promotion")
def compare_and_promote(model_name: str, version: int, tracking: str, warehouse: str,
                        data_path: str) -> dict[str, Any]:
    """Compare the shadowed version with the champion, then promote it on approval."""
    from knot_prefect.monitoring.shadow import shadow_comparison
    from knot_prefect.tasks import promote

    comparison = shadow_comparison(warehouse, model_name, shadow_version=version,
                                   tracking=tracking)
    decision = promote(model_name, version, "champion", data=pd.read_parquet(data_path),
                       target="label", min_delta=-1.0, tracking=tracking,
                       approval="3m", shadow=comparison, min_shadow_requests=10)
    return {"decision": decision.decision, "reason": decision.reason}


if __name__ == "__main__":
    print("DECISION " + json.dumps(compare_and_promote(**json.loads(sys.argv[1]))))
