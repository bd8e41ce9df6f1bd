"""A small real world for serving tests: a materialized Feast repo and registered models."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

MODEL = "churn-serve"
FEATURES = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d", "monthly_fee"]


@dataclass
class World:
    """Where things are: the Feast repo, the MLflow store and the customers."""

    repo: Path
    tracking_uri: str
    customers: list[int]
    tables: dict[str, Any]


def build_world(folder: Path, customers: int = 200, seed: int = 3) -> World:
    """Write and materialize the churn Feast repo; register two model versions.

    Version 1 holds ``champion``, version 2 (different regularisation, so different
    predictions) holds ``challenger``.
    """
    import mlflow

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.demo.data import DATASET_END, generate_churn_dataset
    from knot_prefect.demo.model import train_churn_classifier
    from knot_prefect.demo.seed import write_feature_repo
    from knot_prefect.features.apply import apply_repo
    from knot_prefect.features.materialization import materialize_views
    from knot_prefect.features.repo import load_repo_contents
    from knot_prefect.tracking.fluent import fluent_store

    tables = generate_churn_dataset(customers=customers, days=12, seed=seed)
    repo = write_feature_repo(folder / "feast", tables)
    store = FeastFeatureStore(repo_path=str(repo)).get_store()
    apply_repo(store, load_repo_contents(repo, store.project))
    materialize_views(store, end=DATASET_END + timedelta(seconds=1))

    last = tables["customer_activity"].groupby("customer_id").tail(1)
    data = (
        last.merge(tables["customers"][["customer_id", "monthly_fee"]], on="customer_id")
        .merge(tables["churn_labels"][["customer_id", "churned"]], on="customer_id")
    )[[*FEATURES, "churned"]]
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracking = MLflowTracking(tracking_uri=tracking_uri)
    client = tracking.get_client()
    experiment = client.create_experiment(
        "serving", artifact_location=(folder / "artifacts").as_uri()
    )
    with fluent_store(tracking):
        for version, regularisation in ((1, 1.0), (2, 0.001)):
            with mlflow.start_run(experiment_id=experiment):
                uri = train_churn_classifier(data, {"C": regularisation})
            mlflow.register_model(uri, MODEL)
            client.set_registered_model_alias(
                MODEL, "champion" if version == 1 else "challenger", str(version)
            )
    return World(repo=repo, tracking_uri=tracking_uri,
                 customers=sorted(int(c) for c in last["customer_id"]), tables=tables)


class ServerThread:
    """A real uvicorn server on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def model_predictions(
    world: World, version: int, customers: list[int], one_by_one: bool = False
) -> list[Any]:
    """The positive-class probability the registered version gives the customers' features.

    Features are read with knot's ``online_features`` task (Feast's own online read)
    and passed to the pyfunc model loaded by pinned version: as one batch, or one row
    per call (the last bits of a float can depend on the batch a row is scored in).
    """
    import mlflow

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tasks import online_features
    from knot_prefect.tracking.fluent import fluent_store

    store = FeastFeatureStore(repo_path=str(world.repo))
    frame = online_features.fn(store, [{"customer_id": c} for c in customers], "churn_model")
    with fluent_store(MLflowTracking(tracking_uri=world.tracking_uri)):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    inputs = frame[FEATURES]
    # The churn classifier gives class probabilities; the answer's "probability" is the
    # positive class's.
    if one_by_one:
        return [float(model.predict(inputs.iloc[[i]])[0][1]) for i in range(len(inputs))]
    return [float(row[1]) for row in model.predict(inputs)]
