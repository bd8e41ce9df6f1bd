"""``knot serve`` keeps answering while ``feature_materialization_flow`` writes its store.

A real ``knot serve`` process on a Feast SQLite online store takes requests from four
threads while the flow materializes a new day of activity into that same store: every
answer is a 200, and every entity's features are either all of the old day or all of
the new one (never an error, never a mix).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.serving.world import FEATURES, MODEL, World, build_world

pytestmark = pytest.mark.heavy

KNOT = str(Path(sys.executable).parent / "knot")
ACTIVITY = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d"]
THREADS = 4
BATCH = 20


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("materializing-world"), customers=400)


@pytest.fixture(scope="module")
def service(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [KNOT, "serve", "--model", f"{MODEL}@champion", "--features", str(world.repo),
               "--tracking", world.tracking_uri, "--port", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def new_day(world: World) -> pd.DataFrame:
    """The next day's activity (every count moved), appended to the offline source."""
    from knot_prefect.demo.data import DATASET_END

    activity = world.tables["customer_activity"]
    last = activity.groupby("customer_id").tail(1)
    new = last.assign(event_timestamp=DATASET_END + timedelta(days=1),
                      sessions_7d=last["sessions_7d"] + 1000,
                      minutes_7d=last["minutes_7d"] + 1000.0,
                      tickets_14d=last["tickets_14d"] + 100,
                      failed_payments_14d=last["failed_payments_14d"] + 100)
    columns = ["customer_id", "event_timestamp", *ACTIVITY]
    source = world.repo / "data" / "customer_activity.parquet"
    pd.concat([activity[columns], new[columns]]).to_parquet(source, index=False)
    return new


def test_answers_stay_whole_while_features_materialize(world: World, service: str) -> None:
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.flows import feature_materialization_flow

    old = world.tables["customer_activity"].groupby("customer_id").tail(1)
    old_values = {int(r.customer_id): tuple(getattr(r, c) for c in ACTIVITY)
                  for r in old.itertuples()}
    new_values = {int(r.customer_id): tuple(getattr(r, c) for c in ACTIVITY)
                  for r in new_day(world).itertuples()}
    answers: list[tuple[int, Any]] = []
    done = threading.Event()

    def load(offset: int) -> None:
        with httpx.Client(base_url=service, timeout=60) as client:
            i = offset
            while not done.is_set():
                batch = [world.customers[(i + k) % len(world.customers)] for k in range(BATCH)]
                i += BATCH * THREADS
                response = client.post("/predict", json={
                    "entities": [{"customer_id": c} for c in batch]})
                answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=load, args=(n * BATCH,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        while len(answers) < THREADS:  # the load is on before the flow starts
            time.sleep(0.05)
        during_start = len(answers)
        state = feature_materialization_flow(
            FeastFeatureStore(repo_path=str(world.repo)), apply=False,
            end=DATASET_END + timedelta(days=1, seconds=1), return_state=True)
        during_end = len(answers)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    assert state.is_completed(), state
    assert during_end > during_start  # requests were answered while it ran

    failures = [(status, body) for status, body in answers if status != 200]
    assert failures == [], failures[:3]
    seen = {"old": 0, "new": 0}
    for _, body in answers:
        for prediction in body["predictions"]:
            customer = prediction["entity"]["customer_id"]
            values = tuple(prediction["features"][c] for c in ACTIVITY)
            assert values in (old_values[customer], new_values[customer]), (customer, values)
            seen["old" if values == old_values[customer] else "new"] += 1
            assert set(FEATURES) <= set(prediction["features"])
    assert seen["old"] > 0
    with httpx.Client(base_url=service, timeout=60) as client:
        after = client.post("/predict", json={"entities": [
            {"customer_id": c} for c in world.customers[:BATCH]]}).json()
    assert all(tuple(p["features"][c] for c in ACTIVITY)
               == new_values[p["entity"]["customer_id"]] for p in after["predictions"])
