"""A model whose every prediction fails: the shadow that must never hurt an answer."""

from __future__ import annotations

from typing import Any

import mlflow


class BrokenModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        raise RuntimeError("this shadow model is broken")
