"""Training functions the tuning tests search over: fast, deterministic, some failing.

This module is pickled by value (see conftest.py), so Dask workers in other processes
run these functions without importing the test package.
"""

from __future__ import annotations

import os
from typing import Any

from knot_prefect.tuning.trial import TrialOutput

FAIL_AT = 0.5  # quadratic_with_failure raises for this value of x


def quadratic(params: dict[str, Any]) -> dict[str, float]:
    """A smooth score with its maximum at x = 1, y = 'b'."""
    x = float(params["x"])
    bonus = 0.5 if params.get("y", "b") == "b" else 0.0
    return {"score": -((x - 1.0) ** 2) + bonus, "pid": float(os.getpid())}


def quadratic_with_failure(params: dict[str, Any]) -> dict[str, float]:
    if float(params["x"]) == FAIL_AT:
        raise ValueError(f"diverged at x={params['x']}")
    return quadratic(params)


def always_fails(params: dict[str, Any]) -> dict[str, float]:
    raise RuntimeError(f"cannot train with {params}")


def linear_model(params: dict[str, Any]) -> TrialOutput:
    """A scikit-learn ridge regression whose fit depends on alpha; returns the model."""
    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    target = features @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=200)
    model = Ridge(alpha=float(params["alpha"])).fit(features[:150], target[:150])
    rmse = mean_squared_error(target[150:], model.predict(features[150:])) ** 0.5
    return TrialOutput(metrics={"rmse": float(rmse)}, model=model)
