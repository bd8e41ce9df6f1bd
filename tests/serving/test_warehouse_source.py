"""Serving without Feast: the latest row per key of a warehouse table, or values sent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from knot_prefect.errors import ConfigurationError
from tests.templates.datasets import loans

MODEL = "shop-loans"
INPUTS = ["region", "product", "income", "amount"]


@dataclass
class Shop:
    """A DuckDB table of loans and a registered model trained on its own columns."""

    warehouse: Any
    tracking: Any
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    import mlflow

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.tracking.fluent import fluent_store
    from knot_prefect.trainers.builtin import gradient_boosting
    from knot_prefect.trainers.contract import call_trainer

    folder: Path = tmp_path_factory.mktemp("shop")
    frame = loans(rows=300).frame
    warehouse = DuckDBWarehouse(path=str(folder / "shop.duckdb"))
    warehouse.write(frame, "loans")
    tracking = MLflowTracking(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    client = tracking.get_client()
    experiment = client.create_experiment("shop", artifact_location=(folder / "a").as_uri())
    with fluent_store(tracking), mlflow.start_run(experiment_id=experiment):
        uri = call_trainer(gradient_boosting, frame[[*INPUTS, "defaulted"]], "defaulted",
                           {"max_iter": 30})
        mlflow.register_model(uri, MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return Shop(warehouse, tracking, frame)


def service(shop: Shop, source: str = "loans", keys: tuple[str, ...] = ("loan_ref",),
            timestamp: str | None = "opened_at") -> Any:
    from knot_prefect.serving.model_holder import ModelHolder
    from knot_prefect.serving.service import PredictionService
    from knot_prefect.serving.warehouse_source import WarehouseSource

    features = WarehouseSource(shop.warehouse, source, list(keys), timestamp)
    holder = ModelHolder(MODEL, "champion", shop.tracking, features.plan)
    holder.refresh()
    return PredictionService(features, holder)


def model_answer(shop: Shop, row: dict[str, Any]) -> dict[str, Any]:
    """What the registered model gives the row, in knot's binary shape."""
    import mlflow

    from knot_prefect.tasks.mlflow_predict import predict_frame
    from knot_prefect.tracking.fluent import fluent_store

    with fluent_store(shop.tracking):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    shaped = predict_frame(pd.DataFrame([{name: row[name] for name in INPUTS}]), model)
    return {"prediction": shaped["prediction"].iloc[0],
            "probability": pytest.approx(float(shaped["probability"].iloc[0]), rel=1e-9)}


@pytest.fixture(scope="module")
def client(shop: Shop) -> TestClient:
    from knot_prefect.serving.app import create_app

    return TestClient(create_app(service(shop)))


def test_the_latest_row_of_the_key_is_scored(shop: Shop, client: TestClient) -> None:
    first = shop.frame.iloc[0]
    newer = first.to_dict() | {"income": 12_000.0, "amount": 40_000.0, "region": "east",
                               "opened_at": first["opened_at"] + pd.Timedelta(days=400)}
    shop.warehouse.write(pd.DataFrame([newer]).astype(shop.frame.dtypes.to_dict()), "loans")
    try:
        response = client.post("/predict", json={"entity": {"loan_ref": int(first.loan_ref)}})
        assert response.status_code == 200, response.text
        body = response.json()
        answer = body["predictions"][0]
        assert answer["entity"] == {"loan_ref": int(first.loan_ref)}
        assert answer["features"] == {name: newer[name] for name in INPUTS}
        assert pd.Timestamp(answer["feature_timestamps"]["loans"]) == newer["opened_at"]
        assert {k: answer[k] for k in ("prediction", "probability")} == model_answer(shop, newer)
        assert "probabilities" not in answer
        assert body["feature_view_versions"] == "warehouse columns"
    finally:
        shop.warehouse.write(shop.frame, "loans", mode="replace")


def test_a_batch_answers_each_key_in_request_order(shop: Shop, client: TestClient) -> None:
    rows = shop.frame.iloc[[5, 2, 5, 9]].to_dict("records")
    response = client.post("/predict", json={
        "entities": [{"loan_ref": int(row["loan_ref"])} for row in rows]})
    assert response.status_code == 200, response.text
    for answer, row in zip(response.json()["predictions"], rows, strict=True):
        assert answer["entity"] == {"loan_ref": int(row["loan_ref"])}
        assert {k: answer[k] for k in ("prediction", "probability")} == model_answer(shop, row)


def test_an_unknown_key_is_404_naming_it_and_the_table(client: TestClient) -> None:
    response = client.post("/predict", json={"entities": [{"loan_ref": 50_001},
                                                          {"loan_ref": 7}]})
    assert response.status_code == 404
    body = response.json()
    assert "loan_ref=7" in body["message"] and "warehouse table loans" in body["message"]
    assert body["detail"]["unknown"] == [{"loan_ref": 7}]


def test_features_sent_with_the_entity_are_scored_as_sent(
    shop: Shop, client: TestClient
) -> None:
    sent = {"region": "west", "product": "card", "income": 20_000.0, "amount": 30_000.0}
    # A key the table does not hold: nothing is read for it.
    response = client.post("/predict", json={"entity": {"loan_ref": 1, "features": sent}})
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    assert answer["entity"] == {"loan_ref": 1}
    assert answer["features"] == sent
    assert answer["feature_timestamps"] == {"loans": None}
    assert {k: answer[k] for k in ("prediction", "probability")} == model_answer(shop, sent)
    # In one batch with an entity whose features are read.
    stored = shop.frame.iloc[4].to_dict()
    batch = client.post("/predict", json={"entities": [
        {"loan_ref": int(stored["loan_ref"])}, {"loan_ref": 1, "features": sent}]})
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["predictions"]
    assert {k: first[k] for k in ("prediction", "probability")} == model_answer(shop, stored)
    assert second["features"] == sent

    def refused(entity: dict[str, Any]) -> dict[str, Any]:
        answer = client.post("/predict", json={"entity": entity})
        assert answer.status_code == 422
        return answer.json()

    # All of them or none; typed from the model's signature; nothing else.
    partial = refused({"loan_ref": 1, "features": {"income": 1.0}})
    assert "entity.features.amount" in {item["field"] for item in partial["detail"]}
    mistyped = refused({"loan_ref": 1, "features": {**sent, "income": "high"}})
    assert [item["field"] for item in mistyped["detail"]] == ["entity.features.income"]
    assert "salary" in refused({"loan_ref": 1, "features": {**sent, "salary": 1.0}})["message"]
    assert "salary" in refused({"loan_ref": 1, "salary": 1.0})["message"]


def test_a_table_without_a_model_input_is_refused_at_start_naming_it(shop: Shop) -> None:
    shop.warehouse.write(shop.frame.drop(columns=["income"]), "loans_narrow", mode="replace")
    with pytest.raises(ConfigurationError) as raised:
        service(shop, source="loans_narrow")
    message = str(raised.value)
    assert "model input 'income'" in message and "warehouse table loans_narrow" in message
    assert "'amount'" in message  # the columns it has are listed
    with pytest.raises(ConfigurationError, match="timestamp column 'signed_at'"):
        service(shop, timestamp="signed_at")


def test_composite_keys_over_a_query(shop: Shop) -> None:
    from knot_prefect.serving.app import create_app

    query = "select * from loans where amount > 0"
    client = TestClient(create_app(service(shop, source=query, keys=("loan_ref", "region"))))
    row = shop.frame[shop.frame["amount"] > 0].iloc[3].to_dict()
    key = {"loan_ref": int(row["loan_ref"]), "region": str(row["region"])}
    response = client.post("/predict", json={"entity": key})
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    assert answer["entity"] == key
    assert {k: answer[k] for k in ("prediction", "probability")} == model_answer(shop, row)
    other_region = client.post("/predict", json={"entity": {**key, "region": "nowhere"}})
    assert other_region.status_code == 404


def test_without_a_timestamp_a_key_with_several_rows_is_409(shop: Shop) -> None:
    from knot_prefect.serving.app import create_app

    doubled = pd.concat([shop.frame, shop.frame.iloc[[0]]])
    shop.warehouse.write(doubled, "loans_doubled", mode="replace")
    client = TestClient(create_app(service(shop, source="loans_doubled", timestamp=None)))
    key = int(shop.frame["loan_ref"].iloc[0])
    response = client.post("/predict", json={"entity": {"loan_ref": key}})
    assert response.status_code == 409
    assert f"loan_ref={key}" in response.json()["message"]
    assert "timestamp_column" in response.json()["message"]
    assert client.post("/predict", json={"entity": {"loan_ref": key + 1}}).status_code == 200


def test_a_failed_read_is_503_without_the_credentials_a_driver_echoes(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knot_prefect.serving.app import create_app

    served = service(shop)  # the plan is read before the failure starts
    secret = "s3cret-pw"

    def read_arrow(sql: str, params: Any = None) -> Any:
        raise RuntimeError(f"connection to postgresql://knot:{secret}@db:5432/shop refused")

    monkeypatch.setattr(served.source.warehouse, "read_arrow", read_arrow)
    response = TestClient(create_app(served)).post(
        "/predict", json={"entity": {"loan_ref": int(shop.frame.iloc[0].loan_ref)}})
    assert response.status_code == 503, response.text
    assert secret not in response.text
    assert "postgresql://knot:" in response.text and "db:5432/shop refused" in response.text


def test_feature_reads_wait_for_the_shadows_turn_on_a_duckdb_file(shop: Shop) -> None:
    """The shadow's process appends to the same file now and then: a read waits for that
    turn instead of failing the request; the block the team configured is left as it was."""
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.serving.warehouse_source import TURN_WAIT_SECONDS, WarehouseSource

    features = WarehouseSource(shop.warehouse, "loans", ["loan_ref"], "opened_at")
    assert isinstance(features.warehouse, DuckDBWarehouse)
    assert features.warehouse.turn_wait_seconds == TURN_WAIT_SECONDS == 10
    assert shop.warehouse.turn_wait_seconds == 0
