"""Shadow scoring in the serving service: the champion answers, the challenger scores
the same rows off the response path into a warehouse table; the comparison publishes
agreement, PSI and latencies; promote refuses without enough shadow evidence."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knot_prefect.monitoring.shadow import ShadowComparison, compare_shadow_table
from knot_prefect.serving import ServeSettings
from knot_prefect.serving.service import PredictionService
from knot_prefect.serving.shadow import ShadowScorer
from knot_prefect.serving.shadow_worker import NICENESS
from tests.services import free_port
from tests.triggers.conftest import log_and_register, rows

MODEL = "churn-loop-shadow"
WAREHOUSE = "loop-shadow-warehouse"
REQUESTS = 30  # of two entities each
QUEUE = 2 * REQUESTS  # most requests waiting for the shadow


@pytest.fixture(scope="module")
def registry(tracking_store: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v1 (constant) is champion, v2 (logistic) challenger, v3 (always fails) broken."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from knot_prefect.tasks.mlflow_registry import register_model
    from knot_prefect.tracking.runs import tracked_run
    from tests.loop.broken_model import BrokenModel

    data = rows(seed=31)
    assert log_and_register(tracking_store, MODEL, DummyClassifier(), data) == 1
    assert log_and_register(tracking_store, MODEL, LogisticRegression(), data) == 2
    features = data[["x1", "x2"]]
    with tracked_run(tracking_store, run_name="broken"):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=BrokenModel(), pip_requirements=["mlflow"],
            signature=infer_signature(features, np.zeros(len(features))))
    assert int(register_model.fn(info.model_uri, MODEL, tracking_store).version) == 3
    client = tracking_store.get_client()
    for alias, version in (("champion", 1), ("challenger", 2), ("broken", 3)):
        client.set_registered_model_alias(MODEL, alias, str(version))

    warehouse = DuckDBWarehouse(
        path=str(tmp_path_factory.mktemp("shadow") / "warehouse.duckdb"))
    customers = rows(seed=32).drop(columns="label")
    customers.insert(0, "customer_id", np.arange(1, len(customers) + 1, dtype="int64"))
    warehouse.write(customers, "customers", mode="replace")
    warehouse.save(WAREHOUSE, overwrite=True)
    return {"warehouse": warehouse, "customers": customers, "tracking": tracking_store}


SETTINGS = {"model": f"{MODEL}@champion", "source": "customers", "warehouse": WAREHOUSE,
            "key_columns": ["customer_id"], "refresh": 3600}


def serve(registry: dict[str, Any], **settings: Any) -> PredictionService:
    served = PredictionService.from_settings(ServeSettings(
        **SETTINGS, tracking=registry["tracking"].tracking_uri, **settings))
    served.start()
    return served


def ask(served: PredictionService) -> list[dict[str, Any]]:
    """REQUESTS requests of two customers each, one after the other."""
    return [served.predict([{"customer_id": start}, {"customer_id": start + 1}])
            for start in range(1, 2 * REQUESTS, 2)]


@pytest.fixture(scope="module")
def challenger(registry: dict[str, Any]) -> Iterator[PredictionService]:
    """The champion served, shadowed by the challenger (a queue of QUEUE requests)."""
    served = serve(registry, shadow="challenger", shadow_table="shadow_scores",
                   shadow_queue=QUEUE)
    try:
        yield served
    finally:
        served.stop()


def shadow_of(served: PredictionService) -> ShadowScorer:
    assert served.shadow is not None
    return served.shadow


def test_the_challenger_scores_the_same_rows_in_the_shadow(
        registry: dict[str, Any], challenger: PredictionService) -> None:
    import mlflow

    from knot_prefect.tracking.fluent import fluent_store

    answers = ask(challenger)
    assert shadow_of(challenger).drain(timeout=120)
    stats = shadow_of(challenger).stats
    assert (stats.scored, stats.written, stats.lost) == (REQUESTS, 2 * REQUESTS, 0)
    # The answers are the champion's alone.
    assert {a["model"]["version"] for a in answers} == {1}
    assert "shadow" not in answers[0]

    table = registry["warehouse"].read("select * from shadow_scores order by entity")
    assert len(table) == 2 * REQUESTS
    assert set(table["primary_version"]) == {1} and set(table["shadow_version"]) == {2}
    assert set(table["primary_alias"]) == {"champion"}
    assert set(table["shadow_alias"]) == {"challenger"}
    # The shadow scored exactly the rows the champion was fed.
    with registry["tracking"].session(), fluent_store(registry["tracking"]):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    fed = registry["customers"].set_index("customer_id").loc[1:2 * REQUESTS, ["x1", "x2"]]
    expected = pd.Series(model.predict(fed), index=fed.index)
    keys = table["entity"].map(lambda entity: json.loads(entity)["customer_id"])
    assert [int(p) for p in table["shadow_prediction"]] == list(expected.loc[keys])
    assert (table["agree"] == (table["primary_prediction"] == table["shadow_prediction"])).all()

    comparison = compare_shadow_table(WAREHOUSE, MODEL, 2, tracking=registry["tracking"])
    assert comparison.requests == 2 * REQUESTS
    assert comparison.agreement == pytest.approx(table["agree"].mean())
    assert comparison.score_psi is not None and comparison.shadow_p99_ms > 0
    [run] = registry["tracking"].get_client().search_runs(
        [registry["tracking"].get_client().get_experiment_by_name("triggers").experiment_id],
        filter_string=f"tags.`knot.model` = '{MODEL}/2'")
    assert run.data.metrics["shadow_agreement"] == pytest.approx(comparison.agreement)
    assert run.data.metrics["shadow_requests"] == 2 * REQUESTS


def test_the_service_reports_what_its_shadow_did(
        registry: dict[str, Any], challenger: PredictionService) -> None:
    from fastapi.testclient import TestClient

    from knot_prefect.serving.app import create_app

    assert shadow_of(challenger).drain(timeout=60)
    report = TestClient(create_app(challenger)).get("/shadow")
    assert report.status_code == 200
    body = report.json()
    stats = shadow_of(challenger).stats
    assert (body["model"], body["alias"], body["version"]) == (MODEL, "challenger", 2)
    assert (body["sampled"], body["scored"], body["written"]) == (
        stats.sampled, stats.scored, stats.written)
    assert body["written"] >= 2 * REQUESTS and body["dropped"] == stats.dropped

    plain = serve(registry)
    try:
        missing = TestClient(create_app(plain)).get("/shadow")
    finally:
        plain.stop()
    assert missing.status_code == 404 and "--shadow" in missing.json()["message"]


def test_the_shadow_runs_in_a_process_of_its_own_at_a_lower_priority(
        challenger: PredictionService) -> None:
    pid = shadow_of(challenger).pid
    assert pid is not None and pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, pid) == (
        os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)


def test_queued_requests_are_scored_together_in_one_model_call(
        registry: dict[str, Any], challenger: PredictionService) -> None:
    shadow = shadow_of(challenger)
    before = shadow.stats
    fed = registry["customers"].set_index("customer_id").loc[1:5, ["x1", "x2"]]
    for customer, (x1, x2) in fed.iterrows():  # faster than the shadow takes a batch
        assert shadow.offer([{"customer_id": customer}], {"customer_id": [customer]},
                            {"x1": [x1], "x2": [x2]}, [{"prediction": 0}], 1, 1.0,
                            "2026-01-02T00:00:00+00:00")
    assert shadow.drain(timeout=60)
    after = shadow.stats
    assert (after.batches - before.batches, after.scored - before.scored) == (1, 5)
    table = registry["warehouse"].read(
        "select * from shadow_scores where scored_at = '2026-01-02T00:00:00+00:00'")
    assert sorted(table["entity"]) == sorted(json.dumps({"customer_id": c}) for c in fed.index)


def test_a_full_queue_drops_the_sample_rather_than_wait(
        challenger: PredictionService) -> None:
    shadow = shadow_of(challenger)
    assert shadow.pid is not None
    before = shadow.stats
    os.kill(shadow.pid, signal.SIGSTOP)  # a shadow slower than the load
    try:
        answers = [challenger.predict([{"customer_id": 1}]) for _ in range(QUEUE + 3)]
    finally:
        os.kill(shadow.pid, signal.SIGCONT)
    assert all(len(a["predictions"]) == 1 for a in answers)
    after = shadow.stats
    assert after.sampled - before.sampled == QUEUE
    assert after.dropped - before.dropped == 3
    assert shadow.drain(timeout=60)


def test_requests_wait_whole_while_the_shadows_pipe_is_full(
        registry: dict[str, Any], challenger: PredictionService) -> None:
    """A stopped shadow fills its pipe: the service keeps answering and gathering (up to
    the queue), and the shadow, resumed, reads every request whole from the backlog."""
    shadow = shadow_of(challenger)
    assert shadow.pid is not None
    before = shadow.stats
    fed = registry["customers"].set_index("customer_id").loc[1:200, ["x1", "x2"]]
    keys = [{"customer_id": int(c)} for c in fed.index]
    requests, scored_at = QUEUE // 2, "2026-01-03T00:00:00+00:00"
    os.kill(shadow.pid, signal.SIGSTOP)
    try:
        for _ in range(requests):  # about 0.5 MB: several times what a pipe buffers
            started = time.perf_counter()
            assert shadow.offer(keys, {"customer_id": list(fed.index)},
                                {"x1": list(fed["x1"]), "x2": list(fed["x2"])},
                                [{"prediction": 0}] * len(keys), 1, 1.0, scored_at)
            assert time.perf_counter() - started < 0.5  # never waits for the shadow
            time.sleep(0.02)  # spread over several sends
        time.sleep(3 * shadow.batching.batch_seconds)
        assert challenger.predict([{"customer_id": 1}])["predictions"]
    finally:
        os.kill(shadow.pid, signal.SIGCONT)
    assert shadow.drain(timeout=120)
    after = shadow.stats
    assert after.scored - before.scored == requests + 1
    assert (after.dropped, after.failed, after.lost) == (before.dropped, before.failed, 0)
    table = registry["warehouse"].read(
        f"select entity, count(*) as n from shadow_scores where scored_at = '{scored_at}' "
        "group by entity")
    assert sorted(table["entity"]) == sorted(json.dumps(key) for key in keys)
    assert set(table["n"]) == {requests}


def test_a_request_that_cannot_travel_is_dropped_and_counted(
        challenger: PredictionService) -> None:
    shadow = shadow_of(challenger)
    before = shadow.stats
    assert not shadow.offer([{"customer_id": 1}], {"customer_id": [1]},
                            {"x1": [lambda: 0.0], "x2": [0.5]}, [{"prediction": 0}], 1, 1.0,
                            "2026-01-04T00:00:00+00:00")
    after = shadow.stats
    assert (after.dropped, after.sampled) == (before.dropped + 1, before.sampled)
    assert "pickle" in (after.last_error or "").lower()
    assert shadow.drain(timeout=60)


def test_a_dead_shadow_drops_and_counts_and_the_service_stops_cleanly(
        challenger: PredictionService) -> None:
    shadow = shadow_of(challenger)
    pid = shadow.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        challenger.predict([{"customer_id": 1}])  # answered while the shadow dies
    before = shadow.stats
    answer = challenger.predict([{"customer_id": 3}])
    assert answer["predictions"][0]["entity"] == {"customer_id": 3}
    assert shadow.stats.dropped == before.dropped + 1
    challenger.stop()
    assert shadow.pid is None


def test_the_shadow_process_stops_with_the_service(registry: dict[str, Any]) -> None:
    served = serve(registry, shadow="broken", shadow_table="broken_shadow_scores")
    try:
        answers = ask(served)
        assert shadow_of(served).drain(timeout=120)
        stats = shadow_of(served).stats
        pid = shadow_of(served).pid
    finally:
        served.stop()
    # A broken shadow never fails an answer.
    assert len(answers) == REQUESTS and all(len(a["predictions"]) == 2 for a in answers)
    assert stats.failed == REQUESTS and stats.written == 0
    assert "this shadow model is broken" in (stats.last_error or "")
    assert not registry["warehouse"].table_exists("broken_shadow_scores")
    # Nothing is left running.
    assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_a_stop_sent_to_the_process_group_lets_the_shadow_write_what_it_holds(
        registry: dict[str, Any]) -> None:
    served = serve(registry, shadow="challenger", shadow_table="grouped_shadow_scores")
    try:
        ask(served)
        pid = shadow_of(served).pid
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # what ``kill -TERM -PGID`` sends the shadow too
    finally:
        served.stop()  # what the service does on its own SIGTERM
    stats = shadow_of(served).stats
    assert (stats.scored, stats.written, stats.lost) == (REQUESTS, 2 * REQUESTS, 0)
    assert len(registry["warehouse"].read("select * from grouped_shadow_scores")) == (
        2 * REQUESTS)


def test_a_hung_shadow_is_killed_once_the_stop_timeout_has_passed(
        registry: dict[str, Any]) -> None:
    """The shadow ignores SIGTERM (a service manager sends it to the whole group), so a
    shadow that does not end by the stop's timeout is killed at once, not asked again."""
    served = serve(registry, shadow="challenger", shadow_table="hung_shadow_scores")
    shadow = shadow_of(served)
    pid = shadow.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung: it reads nothing and answers no signal but KILL
    try:
        started = time.monotonic()
        shadow.stop(timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        served.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert elapsed < 4.0, f"the stop took {elapsed:.1f} s for a 1 s timeout"


def test_a_write_error_is_masked_where_the_shadow_records_it(
        registry: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    """A URL with credentials in a write error is masked in the shadow's own log and in
    the stats the service reads, not only in ``GET /shadow``."""
    secret = "shadow-s3cr3t-pw"
    served = serve(registry, shadow="challenger",
                   shadow_table=f"postgresql://scorer:{secret}@dbhost/scores")
    try:
        ask(served)
        deadline = time.monotonic() + 60
        while shadow_of(served).stats.last_error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = shadow_of(served).stats
    finally:
        served.stop()
    logged = capfd.readouterr()
    assert stats.last_error is not None and "dbhost" in stats.last_error
    assert secret not in stats.last_error
    assert "dbhost" in logged.err + logged.out  # the shadow did log the error
    assert secret not in logged.err + logged.out


@pytest.mark.heavy
def test_get_shadow_answers_from_a_knot_serve_process(
        registry: dict[str, Any], tmp_path: Path) -> None:
    """``knot serve --shadow`` as a user starts it: the shadow's counts over HTTP, and
    every shadowed row written when the process is stopped as a service manager does."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(Path(sys.executable).parent / "knot"), "serve",
               "--model", f"{MODEL}@champion", "--source", "customers",
               "--warehouse", WAREHOUSE, "--key", "customer_id",
               "--tracking", registry["tracking"].tracking_uri, "--shadow", "challenger",
               "--shadow-table", "served_shadow_scores", "--port", str(port)]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONWARNINGS": "ignore"}
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        for customer in range(1, REQUESTS + 1):
            answer = httpx.post(f"{base}/predict", json={"entity": {"customer_id": customer}},
                                timeout=30)
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while (report := httpx.get(f"{base}/shadow", timeout=10).json())["scored"] < REQUESTS:
            assert time.monotonic() < deadline, report
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the whole group, as a service manager does
        process.wait(timeout=60)
    assert {key: report[key] for key in ("model", "alias", "version", "table")} == {
        "model": MODEL, "alias": "challenger", "version": 2,
        "table": "served_shadow_scores"}
    assert {key: report[key] for key in ("offered", "sampled", "dropped", "scored", "failed",
                                         "lost")} == {
        "offered": REQUESTS, "sampled": REQUESTS, "dropped": 0, "scored": REQUESTS,
        "failed": 0, "lost": 0}
    written = registry["warehouse"].read("select entity from served_shadow_scores")
    assert sorted(written["entity"]) == sorted(
        json.dumps({"customer_id": customer}) for customer in range(1, REQUESTS + 1))


@pytest.mark.heavy
def test_a_program_that_exits_without_stopping_its_shadow_ends_and_keeps_the_rows(
        registry: dict[str, Any], tmp_path: Path) -> None:
    """A team embedding the service in its own program and never calling ``stop``: the
    interpreter's exit ends the shadow (which ignores SIGTERM) after it wrote its rows."""
    from prefect.settings import PREFECT_API_URL

    script = tmp_path / "embedded.py"
    script.write_text(
        "from knot_prefect.serving import ServeSettings\n"
        "from knot_prefect.serving.service import PredictionService\n"
        "if __name__ == '__main__':  # the shadow's process is spawned\n"
        f"    settings = ServeSettings(**{SETTINGS!r}, tracking="
        f"{registry['tracking'].tracking_uri!r}, shadow='challenger', "
        "shadow_table='embedded_shadow_scores')\n"
        "    served = PredictionService.from_settings(settings)\n"
        "    served.start()\n"
        "    served.predict([{'customer_id': 1}, {'customer_id': 2}])\n"
        "    print('shadow pid', served.shadow.pid, flush=True)\n")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                              text=True, timeout=150)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the program did not exit: {exc.stdout!r}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    pid = int(done.stdout.split("shadow pid")[1].split()[0])
    assert not Path(f"/proc/{pid}").exists()
    written = registry["warehouse"].read("select entity from embedded_shadow_scores")
    assert sorted(written["entity"]) == [json.dumps({"customer_id": 1}),
                                         json.dumps({"customer_id": 2})]


def test_promote_refuses_without_enough_shadow_evidence(registry: dict[str, Any]) -> None:
    from knot_prefect.tasks.mlflow_registry import promote

    evidence = ShadowComparison(MODEL, 1, 2, 60, 0.9, 0.05, 1.0, 2.0, 1.0, 2.0)
    labelled = rows(seed=33)
    contest = {"metric": "accuracy", "data": labelled, "target": "label",
               "tracking": registry["tracking"]}
    missing = promote.fn(MODEL, 2, "champion", min_shadow_requests=50, **contest)
    too_few = promote.fn(MODEL, 2, "champion", shadow=evidence, min_shadow_requests=500,
                         **contest)
    too_different = promote.fn(MODEL, 2, "champion", shadow=evidence,
                               max_disagreement=0.05, **contest)
    assert [d.decision for d in (missing, too_few, too_different)] == ["refused"] * 3
    assert "no shadow evidence for churn-loop-shadow v2" in missing.reason
    assert "scored 60 requests, fewer than the 500 required" in too_few.reason
    assert "disagreed with the served v1 on 10.0% of 60" in too_different.reason
    client = registry["tracking"].get_client()
    assert client.get_registered_model(MODEL).aliases["champion"] in (1, "1")

    enough = promote.fn(MODEL, 2, "champion", shadow=evidence, min_shadow_requests=50,
                        max_disagreement=0.2, **contest)
    assert enough.decision == "promoted"
    assert client.get_registered_model(MODEL).aliases["champion"] in (2, "2")


ORPHAN = """
import base64, pickle, sys, time
from knot_prefect.serving.shadow import ShadowScorer
scorer = ShadowScorer(pickle.loads(base64.b64decode(sys.argv[1])))
scorer.start()
print(scorer.pid, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.heavy  # a service process of its own, and its shadow's
def test_the_shadow_process_ends_when_the_service_is_killed(registry: dict[str, Any]) -> None:
    import base64
    import pickle
    import subprocess
    import sys

    from knot_prefect.serving.shadow import BlockCopy, ShadowTarget

    target = ShadowTarget(MODEL, "challenger", "champion", BlockCopy.of(registry["tracking"]),
                          BlockCopy.of(registry["warehouse"]), "orphan_scores")
    service = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, base64.b64encode(pickle.dumps(target)).decode()],
        stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        pid = int(service.stdout.readline())
        assert running(pid)
    finally:
        service.kill()  # no stop: the service's process is gone at once
        service.wait()
    deadline = time.monotonic() + 60
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(pid)
