"""Fixtures of the trigger tests: the real Prefect server, a process worker, two models.

The session's ``prefect server start`` runs the server's services in its own process,
the event pipeline included (event persister, reactive triggers, actions); ``server``
checks that the trigger service is enabled there before any test relies on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests import services

POOL = "triggers-process-pool"
MODEL = "churn-triggers"
OTHER_MODEL = "churn-triggers-other"
WAREHOUSE = "triggers-warehouse"
TRACKING = "triggers-mlflow"
ROWS = 120



@pytest.fixture(scope="module")
def server(prefect_server: str) -> Iterator[Any]:
    """A sync client of the real Prefect server, which is also the current API meanwhile."""
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect keeps one events worker per process, bound to the API of its first event:
    # after other tests' servers, it would send this module's events to a server now gone.
    EventsWorker.drain_all()
    with (
        temporary_settings({PREFECT_API_URL: prefect_server}),
        get_client(sync_client=True) as client,
    ):
        settings = client.request("GET", "/admin/settings").json()
        services = settings["server"]["services"]
        for service in ("triggers", "event_persister"):
            assert services[service]["enabled"], (
                f"the Prefect server runs without its {service} service; triggers need "
                f"PREFECT_SERVER_SERVICES_{service.upper()}_ENABLED=true"
            )
        yield client
        EventsWorker.drain_all()


@dataclass
class Models:
    """Two registered models in an MLflow SQLite store, and the rows they score."""

    tracking_uri: str
    labelled: Path  # parquet: x1, x2, label
    warehouse_path: Path  # DuckDB with table scoring_rows (customer_id, x1, x2)


def rows(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=ROWS), rng.normal(size=ROWS)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": (x1 + 0.3 * x2 > 0).astype("int64")})


def log_and_register(block: Any, name: str, estimator: Any, data: pd.DataFrame) -> int:
    import mlflow
    from mlflow.models import infer_signature

    from knot_prefect.tasks.mlflow_registry import register_model
    from knot_prefect.tracking.runs import tracked_run

    features = data[["x1", "x2"]]
    estimator.fit(features, data["label"])
    with tracked_run(block, run_name=f"{name}-{type(estimator).__name__}"):
        # Requirements given and cloudpickle: MLflow would otherwise infer requirements
        # in a subprocess, and skops imports every estimator to save or load a model.
        info = mlflow.sklearn.log_model(
            estimator, name="model", pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
            signature=infer_signature(features, estimator.predict(features)),
        )
    return int(register_model.fn(info.model_uri, name, block).version)


@pytest.fixture(scope="session")
def tracking_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An ``MLflowTracking`` block on an MLflow SQLite store shared by the trigger tests
    (creating a store runs MLflow's migrations, which takes seconds)."""
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    folder = tmp_path_factory.mktemp("trigger-mlflow")
    return MLflowTracking(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifact_location=(folder / "artifacts").as_uri(),
        experiment_name="triggers",
    )


@pytest.fixture(scope="module")
def models(server: Any, tracking_store: Any, tmp_path_factory: pytest.TempPathFactory
           ) -> Models:
    """``churn-triggers`` v1 (a constant) holding ``champion``, v2 (logistic) better;
    ``churn-triggers-other`` v1. Block documents of the store and warehouse on the server."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    folder = tmp_path_factory.mktemp("trigger-models")
    block = tracking_store
    data = rows(seed=11)
    weak = log_and_register(block, MODEL, DummyClassifier(strategy="most_frequent"), data)
    strong = log_and_register(block, MODEL, LogisticRegression(), data)
    other = log_and_register(block, OTHER_MODEL, LogisticRegression(), data)
    assert (weak, strong, other) == (1, 2, 1)
    # Set by hand, as a team's first champion often is: no promotion, no event.
    block.get_client().set_registered_model_alias(MODEL, "champion", "1")

    labelled = folder / "labelled.parquet"
    rows(seed=12).to_parquet(labelled)
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    scoring = rows(seed=13).drop(columns="label")
    scoring.insert(0, "customer_id", np.arange(1, ROWS + 1, dtype="int64"))
    warehouse.write(scoring, "scoring_rows", mode="replace")
    block.save(TRACKING, overwrite=True)
    warehouse.save(WAREHOUSE, overwrite=True)
    return Models(block.tracking_uri or "", labelled, folder / "warehouse.duckdb")


@pytest.fixture(scope="module")
def worker(server: Any, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Path]:
    """A real `prefect worker start` process serving a process work pool; yields its log."""
    folder = tmp_path_factory.mktemp("trigger-worker")
    home = {"KNOT_HOME": str(folder / "knot-home")}
    with services.process_worker(server, prefect_server, POOL, folder, env=home) as log:
        yield log
