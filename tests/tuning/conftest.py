"""Fixtures of the tuning tests: MLflow stores and trainers Dask workers can run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from tests.tuning import trainers

# The scheduler fixture's workers cannot import the test package: send the trainers'
# code itself with each trial.
cloudpickle.register_pickle_by_value(trainers)


@pytest.fixture(scope="module")
def tuning_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One knot home per module (its embedded MLflow store takes seconds to create)."""
    home = tmp_path_factory.mktemp("knot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        yield home


@pytest.fixture
def embedded(tuning_home: Path) -> MLflowTracking:
    """The embedded SQLite store, with an experiment of this test's own."""
    return MLflowTracking(experiment_name=f"tuning-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def served(mlflow_server: str) -> MLflowTracking:
    """The real MLflow server (parallel writers from Dask workers), own experiment."""
    return MLflowTracking(tracking_uri=mlflow_server,
                          experiment_name=f"tuning-{uuid.uuid4().hex[:8]}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
