"""Following the alias: a promotion switches models under load without a failed request."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
import pytest

from tests.serving.world import MODEL, ServerThread, World, model_predictions


def _service(world: World, tracking: Any = None, refresh: float = 0.2) -> Any:
    from knot_prefect.serving.service import PredictionService
    from knot_prefect.serving.settings import ServeSettings

    settings = ServeSettings(model=f"{MODEL}@champion", features=str(world.repo),
                             tracking=world.tracking_uri, refresh=refresh)
    service = PredictionService.from_settings(settings)
    if tracking is not None:
        service.holder.tracking = tracking
    return service


@pytest.mark.heavy
def test_alias_switch_under_load_fails_no_request(world: World, registry: Any) -> None:
    from knot_prefect.serving.app import create_app

    customers = world.customers[:20]
    results: list[tuple[int, int, int, Any]] = []  # (thread, status, version, ...)
    stop = threading.Event()
    lock = threading.Lock()

    def load(url: str, worker: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = 0
            while not stop.is_set():
                customer = customers[(worker * 7 + i) % len(customers)]
                response = client.post("/predict", json={"entity": {"customer_id": customer}})
                body = response.json()
                version = body["model"]["version"] if response.status_code == 200 else -1
                with lock:
                    results.append((worker, response.status_code, version,
                                    (customer, body.get("predictions"))))
                i += 1

    with ServerThread(create_app(_service(world))) as url:
        threads = [threading.Thread(target=load, args=(url, n)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        registry.set_registered_model_alias(MODEL, "champion", "2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for r in results if r[2] == 2) >= 20:
                    break
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert results and all(status == 200 for _, status, _, _ in results), \
        [r for r in results if r[1] != 200][:3]
    assert {version for _, _, version, _ in results} == {1, 2}
    for worker in range(4):
        versions = [version for w, _, version, _ in results if w == worker]
        # Once a client has seen the new version it never sees the old one again.
        assert versions == sorted(versions)
    new = {customer: answer[0]["probability"]
           for _, _, version, (customer, answer) in results if version == 2}
    old = {customer: answer[0]["probability"]
           for _, _, version, (customer, answer) in results if version == 1}
    for version, seen in ((1, old), (2, new)):
        customers = sorted(seen)
        expected = model_predictions(world, version, customers, one_by_one=True)
        # Concurrent requests are scored together; a row scored in a batch may differ
        # from its single-row score in the last bits only.
        for customer, want in zip(customers, expected, strict=True):
            assert seen[customer] == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert any(new[c] != old[c] for c in set(new) & set(old))


def test_failed_load_keeps_the_old_model_and_logs_without_secrets(
    world: World, registry: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import SecretStr

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.serving.logs import JsonFormatter

    token = "tok-s3cret-value"
    tracking = MLflowTracking(tracking_uri=world.tracking_uri, token=SecretStr(token))
    service = _service(world, tracking=tracking)
    missing = tmp_path / "no-such-model"
    broken = registry.create_model_version(MODEL, source=missing.as_uri())
    registry.set_registered_model_alias(MODEL, "champion", broken.version)

    with caplog.at_level(logging.INFO, logger="knot_prefect.serving"):
        assert service.holder.refresh() is False
    assert service.holder.current.version == 1
    assert service.holder.last_error
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "model_load_failed"]
    line = JsonFormatter().format(record)
    assert '"serving_version": 1' in line and "Keeping" in line
    assert token not in line and token not in service.holder.last_error

    # The alias coming back to a loadable version is followed again.
    registry.set_registered_model_alias(MODEL, "champion", "2")
    assert service.holder.refresh() is True
    assert service.holder.current.version == 2 and service.holder.last_error is None


def test_unknown_alias_fails_at_start_naming_it(world: World) -> None:
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.serving.service import PredictionService
    from knot_prefect.serving.settings import ServeSettings

    settings = ServeSettings(model=f"{MODEL}@gold", features=str(world.repo),
                             tracking=world.tracking_uri)
    with pytest.raises(ConfigurationError, match=f"{MODEL}@gold"):
        PredictionService.from_settings(settings)
