"""Stale features and data contracts, per configuration (FastAPI TestClient)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.world import MODEL, World, model_predictions


@pytest.fixture(scope="module")
def parts(world: World) -> dict[str, Any]:
    """The open store and a loaded model holder, shared by services of different policies."""
    from knot_prefect.serving.service import PredictionService
    from knot_prefect.serving.settings import ServeSettings

    base = PredictionService.from_settings(ServeSettings(
        model=f"{MODEL}@champion", features=str(world.repo), tracking=world.tracking_uri))
    return {"source": base.source, "holder": base.holder}


def _client(parts: dict[str, Any], **policy: Any) -> TestClient:
    from knot_prefect.serving.app import create_app
    from knot_prefect.serving.service import PredictionService

    service = PredictionService(parts["source"], parts["holder"], **policy)
    return TestClient(create_app(service))


def _age(world: World, customer: int) -> float:
    from datetime import UTC, datetime

    activity = world.tables["customer_activity"]
    latest = activity[activity["customer_id"] == customer]["event_timestamp"].max()
    return (datetime.now(UTC) - latest.to_pydatetime()).total_seconds()


def test_stale_features_are_refused_naming_view_and_age(
    parts: dict[str, Any], world: World
) -> None:
    customer = world.customers[5]
    age = _age(world, customer)
    # Activity rows are days old, the profile row years old: a limit between the two
    # makes only the profile view stale.
    client = _client(parts, max_feature_age=age + 3600, stale="error")
    response = client.post("/predict", json={"entity": {"customer_id": customer}})
    assert response.status_code == 409
    body = response.json()
    assert "customer_profile" in body["message"]
    assert "customer_activity" not in body["message"]
    [problem] = body["detail"]["stale"]
    assert problem["view"] == "customer_profile"
    assert problem["entity"] == {"customer_id": customer}
    assert problem["age_seconds"] > age + 3600


def test_stale_features_are_flagged_when_configured(parts: dict[str, Any], world: World) -> None:
    customer = world.customers[5]
    client = _client(parts, max_feature_age=_age(world, customer) + 3600, stale="flag")
    response = client.post("/predict", json={"entity": {"customer_id": customer}})
    assert response.status_code == 200
    body = response.json()
    assert body["stale"] is True
    assert body["predictions"][0]["stale_views"] == ["customer_profile"]
    assert body["predictions"][0]["probability"] == model_predictions(world, 1, [customer])[0]


def test_fresh_features_pass_the_age_limit(parts: dict[str, Any], world: World) -> None:
    client = _client(parts, max_feature_age=10 * 365 * 86400.0, stale="error")
    response = client.post("/predict", json={"entity": {"customer_id": world.customers[5]}})
    assert response.status_code == 200 and response.json()["stale"] is False


CONTRACT = """\
schema_type: dataframe
columns:
  customer_id:
    dtype: int64
    nullable: false
  sessions_7d:
    dtype: int64
    checks:
      less_than_or_equal_to: {limit}
  monthly_fee:
    dtype: float64
    checks:
      greater_than: 0
"""


def test_contract_failure_is_422_naming_column_and_check(
    parts: dict[str, Any], world: World
) -> None:
    from knot_prefect.blocks.contract import DataContract

    activity = world.tables["customer_activity"]
    last = activity.groupby("customer_id").tail(1).set_index("customer_id")["sessions_7d"]
    limit = int(last.median())
    busy = int(last[last > limit].index[0])
    quiet = int(last[last <= limit].index[0])
    contract = DataContract(schema_yaml=CONTRACT.format(limit=limit), version_label="serve")
    client = _client(parts, contract=contract)

    ok = client.post("/predict", json={"entity": {"customer_id": quiet}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["contract_version"] == contract.version

    response = client.post("/predict", json={"entities": [{"customer_id": quiet},
                                                          {"customer_id": busy}]})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "ContractViolationError"
    assert "sessions_7d" in body["message"] and "less_than_or_equal_to" in body["message"]
    [failed] = body["detail"]["failed_checks"]
    assert failed["column"] == "sessions_7d" and failed["failures"] == 1
    assert failed["examples"] == [str(last[busy])]


def test_contract_on_columns_a_request_lacks_fails_at_start(parts: dict[str, Any]) -> None:
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.serving.service import PredictionService

    contract = DataContract(schema_yaml="columns:\n  plan:\n    dtype: str\n")
    with pytest.raises(ConfigurationError, match=r"\['plan'\]"):
        PredictionService(parts["source"], parts["holder"], contract=contract)


def test_sensitive_contract_columns_are_masked(parts: dict[str, Any], world: World) -> None:
    from knot_prefect.blocks.contract import DataContract

    contract = DataContract(schema_yaml=CONTRACT.format(limit=10**6),
                            sensitive_columns=["monthly_fee"])
    client = _client(parts, contract=contract)
    body = client.post("/predict", json={"entity": {"customer_id": world.customers[1]}}).json()
    assert body["predictions"][0]["features"]["monthly_fee"] == "***"
