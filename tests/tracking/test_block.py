"""The MLflowTracking block: where it points, how it authenticates, what it never shows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from knot_prefect.blocks.mlflow_tracking import (
    MLflowTracking,
    TrackingUnavailableError,
    redact_uri,
)
from knot_prefect.errors import ConfigurationError
from knot_prefect.tracking import resolve_tracking, tracked_run
from tests.services import free_port
from tests.tracking.conftest import PASSWORD, TOKEN, USERNAME, AuthProxy, unique


def test_default_is_the_embedded_store_of_the_knot_home(knot_home: Path) -> None:
    tracking = MLflowTracking()
    assert tracking.resolved_tracking_uri() == f"sqlite:///{knot_home / 'mlflow' / 'mlflow.db'}"
    assert tracking.resolved_artifact_location() == (knot_home / "mlflow" / "artifacts").as_uri()
    detail = tracking.check_connection()
    assert detail.startswith("sqlite:///") and "experiments" in detail
    # New experiments keep their artifacts in the knot home, not in ./mlruns.
    experiment = tracking.get_client().get_experiment(tracking.get_or_create_experiment_id())
    assert experiment.artifact_location == (knot_home / "mlflow" / "artifacts").as_uri()


def test_secrets_stay_out_of_reprs_and_dumps() -> None:
    tracking = MLflowTracking(
        tracking_uri="https://mlflow.example.com", username=USERNAME, password=SecretStr(PASSWORD)
    )
    assert PASSWORD not in repr(tracking)
    assert PASSWORD not in str(tracking.model_dump())
    assert PASSWORD not in tracking.model_dump_json()
    assert tracking.redact(f"error talking with {PASSWORD}") == "error talking with ***"


def test_credentials_are_set_only_inside_a_session() -> None:
    tracking = MLflowTracking(token=SecretStr(TOKEN))
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME")}
    with tracking.session():
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == TOKEN
        basic = MLflowTracking(username=USERNAME, password=SecretStr(PASSWORD))
        with basic.session():  # Nested: the inner block's credentials win inside it.
            assert os.environ["MLFLOW_TRACKING_USERNAME"] == USERNAME
            assert "MLFLOW_TRACKING_TOKEN" not in os.environ
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == TOKEN
        assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    after = {k: os.environ.get(k) for k in before}
    assert after == before


def test_invalid_authentication_settings_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="either token or username/password"):
        MLflowTracking(token=SecretStr("a"), username="u", password=SecretStr("p"))
    with pytest.raises(ValidationError, match="needs both username and password"):
        MLflowTracking(username="u")


def test_redact_uri_hides_userinfo() -> None:
    assert redact_uri("http://u:p@host:5000/x") == "http://u:***@host:5000/x"
    assert redact_uri("http://host:5000") == "http://host:5000"


def test_unreachable_server_fails_fast_naming_the_uri_not_the_secret() -> None:
    port = free_port()
    tracking = MLflowTracking(
        tracking_uri=f"http://127.0.0.1:{port}",
        username=USERNAME,
        password=SecretStr(PASSWORD),
        connect_attempts=3,
        retry_delay_seconds=0.05,
        request_timeout_seconds=2,
    )
    with pytest.raises(TrackingUnavailableError):
        tracking.ensure_reachable()  # The first call also pays for importing MLflow.
    started = time.perf_counter()
    with (
        pytest.raises(TrackingUnavailableError) as caught,
        tracked_run(tracking, run_name="never"),
    ):
        pytest.fail("the run must not start")
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "after 3 attempt(s)" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value)
    assert elapsed < 5, f"bounded retries took {elapsed:.1f}s"
    with pytest.raises(TrackingUnavailableError):
        MLflowTracking(
            tracking_uri=f"http://127.0.0.1:{port}", connect_attempts=1
        ).check_connection()


@pytest.mark.services
def test_server_rejects_requests_without_the_token(token_proxy: AuthProxy) -> None:
    anonymous = MLflowTracking(tracking_uri=token_proxy.url, connect_attempts=1)
    rejected = token_proxy.rejected
    with pytest.raises(TrackingUnavailableError, match=r"HTTP 401"):
        anonymous.check_connection()
    assert token_proxy.rejected > rejected

    tracking = MLflowTracking(tracking_uri=token_proxy.url, token=SecretStr(TOKEN))
    assert tracking.check_connection().startswith(token_proxy.url)
    assert f"Bearer {TOKEN}" in token_proxy.seen_authorization
    assert "MLFLOW_TRACKING_TOKEN" not in os.environ


@pytest.mark.services
def test_basic_authentication_reaches_the_server(basic_proxy: AuthProxy) -> None:
    tracking = MLflowTracking(
        tracking_uri=basic_proxy.url,
        username=USERNAME,
        password=SecretStr(PASSWORD),
        experiment_name=unique("basic"),
    )
    with tracked_run(tracking, run_name="basic") as run:
        pass
    assert basic_proxy.authorized > 0
    stored = tracking.get_client().get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert PASSWORD not in str(stored.data.tags) + str(stored.data.params)


def test_documents_resolve_by_name_and_unknown_names_list_existing() -> None:
    name = unique("tracking")
    MLflowTracking(
        tracking_uri="http://mlflow.internal:5000", token=SecretStr(TOKEN), experiment_name="x"
    ).save(name)
    loaded = resolve_tracking(name)
    assert loaded.tracking_uri == "http://mlflow.internal:5000"
    assert loaded.token is not None and loaded.token.get_secret_value() == TOKEN
    with pytest.raises(
        ConfigurationError, match=f"No MLflowTracking block document is named 'nope'.*{name}"
    ):
        resolve_tracking("nope")
