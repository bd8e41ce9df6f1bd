"""Fixtures of the loop tests: the real Prefect server (with its trigger service), an
MLflow store, a monitored model with its reference profile, a process worker.

The server, the MLflow store and the model helpers are the trigger tests' own.
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
from tests.triggers.conftest import log_and_register, rows, server, tracking_store

__all__ = ["server", "tracking_store"]

POOL = "loop-process-pool"
WAREHOUSE = "loop-warehouse"
TRACKING = "loop-mlflow"
REFERENCE_SEED = 11


@dataclass
class Monitored:
    """A model's v1 holding ``champion``, with a reference profile of x1 and x2,
    its predictions in a DuckDB table, and the rows they scored."""

    model: str
    warehouse: Any
    tracking: Any
    version: int

    def score_rows(self, x1_shift: float) -> None:
        """(Re)write the scored rows, ``x1`` shifted by ``x1_shift`` from the reference."""
        data = reference_rows().assign(x1=lambda f: f["x1"] + x1_shift)
        self.warehouse.write(data, "scoring_rows", mode="replace")

    def monitor(self) -> Any:
        """Run ``monitoring_flow`` on the champion's predictions; its final state."""
        from knot_prefect.flows import monitoring_flow

        return monitoring_flow(
            model_name=self.model, predictions_table="predictions",
            key_columns=["customer_id"], entity_sql="select * from scoring_rows",
            warehouse=WAREHOUSE, tracking=TRACKING, return_state=True,
        )


def reference_rows() -> pd.DataFrame:
    frame = rows(seed=REFERENCE_SEED).drop(columns="label")
    frame.insert(0, "customer_id", np.arange(1, len(frame) + 1, dtype="int64"))
    return frame


@pytest.fixture(scope="module")
def monitored(server: Any, tracking_store: Any, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Monitored:
    """The test module's ``MODEL`` (its own, so events of other modules never mix in)."""
    from sklearn.dummy import DummyClassifier

    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.lineage.columns import LINEAGE_COLUMNS
    from knot_prefect.monitoring.profile import build_profile
    from knot_prefect.monitoring.reference import save_reference_profile

    model = request.module.MODEL
    data = rows(seed=REFERENCE_SEED)
    version = log_and_register(tracking_store, model, DummyClassifier(), data)
    save_reference_profile(tracking_store, model, version,
                           build_profile(data[["x1", "x2"]]))
    tracking_store.get_client().set_registered_model_alias(model, "champion", str(version))

    folder = tmp_path_factory.mktemp("loop-warehouse")
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    keys = reference_rows()[["customer_id"]]
    predictions = keys.assign(prediction=0, **{c: None for c in LINEAGE_COLUMNS})
    predictions = predictions.assign(
        model_name=model, model_version=version, model_alias="champion",
        scored_at=pd.Timestamp("2026-01-01", tz="UTC"),
        features_as_of=pd.Timestamp("2026-01-01", tz="UTC"))
    warehouse.write(predictions.astype({c: "string" for c in (
        "feature_views", "contract_version", "source_query_hash", "flow_run_id")}),
        "predictions", mode="replace")
    tracking_store.save(TRACKING, overwrite=True)
    warehouse.save(WAREHOUSE, overwrite=True)
    monitored = Monitored(model, warehouse, tracking_store, version)
    monitored.score_rows(x1_shift=0.0)
    return monitored


@pytest.fixture(scope="module")
def worker(server: Any, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Path]:
    """A real `prefect worker start` process serving a process work pool; yields its log."""
    folder = tmp_path_factory.mktemp("loop-worker")
    home = {"KNOT_HOME": str(folder / "knot-home")}
    with services.process_worker(server, prefect_server, POOL, folder, env=home) as log:
        yield log


def read_events(server: Any, event: str, resource_id: str) -> list[dict[str, Any]]:
    """The stored events named ``event`` about ``resource_id``, oldest first."""
    response = server.request("POST", "/events/filter", json={
        "filter": {
            "event": {"name": [event]},
            "resource": {"id": [resource_id]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
            "order": "ASC",
        },
        "limit": 50,
    })
    events: list[dict[str, Any]] = response.json()["events"]
    return events
