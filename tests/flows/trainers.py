"""Training functions used by the flow tests (referenced by import path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from knot_prefect.demo.model import train_churn_classifier


def counting_trainer(data: Any, params: dict[str, Any]) -> str:
    """The demo trainer, recording each call in the file named by KNOT_TEST_TRAIN_CALLS."""
    calls = Path(os.environ["KNOT_TEST_TRAIN_CALLS"])
    calls.write_text(calls.read_text() + "call\n" if calls.exists() else "call\n")
    return train_churn_classifier(data, params)
