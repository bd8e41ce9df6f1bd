"""``knot serve`` keeps answering while ``feature_materialization_flow`` writes its store.

A real ``knot serve`` process on a Feast SQLite online store takes requests from four
threads while the flow materializes a new day of activity into that same store: every
answer is a 200, and every entity's features are either all of the old day or all of
the new one (never an error, never a mix).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.serving.world import FEATURES, MODEL, World, build_world
from tests.templates.serving import served_process

pytestmark = pytest.mark.heavy

ACTIVITY = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d"]
THREADS = 4
BATCH = 20


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("materializing-world"), customers=400)


@pytest.fixture(scope="module")
def service(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    command = ["knot", "serve", "--model", f"{MODEL}@champion", "--features", str(world.repo),
               "--tracking", world.tracking_uri]
    with served_process(command, tmp_path_factory.mktemp("serve"), {}) as url:
        yield url


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
