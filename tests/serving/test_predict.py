"""POST /predict on a real uvicorn server: values, lineage and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.serving.world import FEATURES, MODEL, ServerThread, World, model_predictions


@pytest.fixture(scope="module")
def service(world: World) -> Any:
    from knot_prefect.serving import ServeSettings
    from knot_prefect.serving.service import PredictionService

    settings = ServeSettings(model=f"{MODEL}@champion", features=str(world.repo),
                             tracking=world.tracking_uri, max_batch=50)
    return PredictionService.from_settings(settings)


@pytest.fixture(scope="module")
def client(service: Any) -> Iterator[httpx.Client]:
    from knot_prefect.serving.app import create_app

    with ServerThread(create_app(service, max_batch=50)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def test_single_prediction_equals_the_models_own(client: httpx.Client, world: World) -> None:
    customer = world.customers[3]
    response = client.post("/predict", json={"entity": {"customer_id": customer}})
    assert response.status_code == 200, response.text
    body = response.json()
    [answer] = body["predictions"]
    assert answer["entity"] == {"customer_id": customer}
    probability = model_predictions(world, 1, [customer])[0]
    assert answer["probability"] == probability
    # One shape per task: a binary classifier answers its label and one probability.
    assert answer["prediction"] == int(probability >= 0.5)
    assert "probabilities" not in answer
    assert set(answer["features"]) == set(FEATURES)


def test_batch_predictions_equal_the_models_own_in_request_order(
    client: httpx.Client, world: World
) -> None:
    customers = [world.customers[i] for i in (40, 2, 17, 2, 99)]
    response = client.post("/predict", json={"entities": [{"customer_id": c} for c in customers]})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["entity"]["customer_id"] for a in answers] == customers
    assert [a["probability"] for a in answers] == model_predictions(world, 1, customers)


def test_concurrent_requests_get_their_own_answers_and_errors(
    client: httpx.Client, world: World
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    customers = [world.customers[i] for i in range(12)]
    requests = [[c] for c in customers] + [[customers[0], 555555]]

    def send(keys: list[int]) -> httpx.Response:
        return client.post("/predict", json={"entities": [{"customer_id": k} for k in keys]})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, requests))
    assert [r.status_code for r in responses] == [200] * 12 + [404]
    assert "customer_id=555555" in responses[-1].json()["message"]
    expected = model_predictions(world, 1, customers, one_by_one=True)
    for response, customer, want in zip(responses, customers, expected, strict=False):
        [answer] = response.json()["predictions"]
        assert answer["entity"] == {"customer_id": customer}
        assert answer["probability"] == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_answer_carries_lineage(client: httpx.Client, world: World) -> None:
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.lineage.columns import feature_view_versions

    body = client.post("/predict", json={"entity": {"customer_id": world.customers[0]}}).json()
    assert body["model"] == {"name": MODEL, "version": 1, "alias": "champion",
                             "uri": f"models:/{MODEL}/1"}
    store = FeastFeatureStore(repo_path=str(world.repo)).get_store()
    views = ["customer_activity", "customer_profile"]
    # The same view@version string the batch lineage column holds.
    assert body["feature_view_versions"] == feature_view_versions(store, views)
    assert [view["name"] for view in body["feature_views"]] == views
    assert body["contract_version"] is None
    answer = body["predictions"][0]
    scored_at = datetime.fromisoformat(body["scored_at"])
    activity = world.tables["customer_activity"]
    latest = activity[activity["customer_id"] == world.customers[0]]["event_timestamp"].max()
    stamp = datetime.fromisoformat(answer["feature_timestamps"]["customer_activity"])
    assert stamp == latest.to_pydatetime().astimezone(UTC)
    age = answer["feature_age_seconds"]["customer_activity"]
    assert age == pytest.approx((scored_at - stamp).total_seconds(), abs=0.01)
    assert answer["stale_views"] == [] and body["stale"] is False


def test_unknown_entity_is_404_naming_the_key(client: httpx.Client, world: World) -> None:
    response = client.post(
        "/predict", json={"entities": [{"customer_id": world.customers[0]},
                                       {"customer_id": 987654}]}
    )
    assert response.status_code == 404
    body = response.json()
    assert "customer_id=987654" in body["message"]
    assert body["detail"]["unknown"] == [{"customer_id": 987654}]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"entity": {"customer_id": "seven"}}, "entity.customer_id", "valid integer"),
        ({"entities": [{"customer_id": 1}, {"customer_id": 1.5}]}, "entities.1.customer_id",
         "valid integer"),
        ({"entity": {}}, "entity.customer_id", "Field required"),
        ({"entity": {"customer_id": 1, "plan": "pro"}}, "entity.plan", "Extra inputs"),
        ({}, "body", "exactly one of 'entity'"),
        ({"entities": []}, "entities", "at least 1"),
        ({"entities": [{"customer_id": 1}] * 51}, "entities", "at most 50"),
    ],
)
def test_bad_request_is_422_naming_the_field(
    client: httpx.Client, payload: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/predict", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert field in [item["field"] for item in body["detail"]]
    assert field in body["message"] and words in body["message"]


def test_key_beyond_int64_is_404_naming_it(client: httpx.Client) -> None:
    response = client.post("/predict", json={"entity": {"customer_id": 2**63}})
    assert response.status_code == 404
    assert f"customer_id={2**63}" in response.json()["message"]


def test_body_that_is_not_json_is_422(client: httpx.Client) -> None:
    response = client.post("/predict", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "RequestValidationError"


def test_health_readiness_model_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    model = client.get("/model").json()
    assert model["version"] == 1 and model["entity_keys"] == ["customer_id"]
    assert sorted(model["inputs"]) == sorted(FEATURES)
    document = client.get("/openapi.json").json()
    predict = document["paths"]["/predict"]["post"]
    assert {"200", "404", "409", "422", "503"} <= set(predict["responses"])
