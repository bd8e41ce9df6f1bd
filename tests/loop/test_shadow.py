"""Shadow scoring in the serving service: the champion answers, the challenger scores
the same rows off the response path into a warehouse table; the comparison publishes
agreement, PSI and latencies; promote refuses without enough shadow evidence."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knot_prefect.monitoring.shadow import ShadowComparison, compare_shadow_table
from knot_prefect.serving import ServeSettings
from knot_prefect.serving.service import PredictionService
from knot_prefect.serving.shadow import ShadowStats
from tests.triggers.conftest import log_and_register, rows

MODEL = "churn-loop-shadow"
WAREHOUSE = "loop-shadow-warehouse"
REQUESTS = 30  # of two entities each


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


def shadowed(registry: dict[str, Any], shadow: str, table: str
             ) -> tuple[list[dict[str, Any]], ShadowStats]:
    """Serve the champion with ``shadow`` in the shadow; the answers, the shadow's counts."""
    served = PredictionService.from_settings(ServeSettings(
        model=f"{MODEL}@champion", source="customers", warehouse=WAREHOUSE,
        key_columns=["customer_id"], tracking=registry["tracking"].tracking_uri,
        shadow=shadow, shadow_table=table, refresh=3600))
    served.start()
    try:
        answers = [served.predict([{"customer_id": start}, {"customer_id": start + 1}])
                   for start in range(1, 2 * REQUESTS, 2)]
        assert served.shadow is not None
        assert served.shadow.drain(timeout=120)
        return answers, served.shadow.stats
    finally:
        served.stop()


def test_the_challenger_scores_the_same_rows_in_the_shadow(registry: dict[str, Any]) -> None:
    import mlflow

    from knot_prefect.tracking.fluent import fluent_store

    answers, stats = shadowed(registry, "challenger", "shadow_scores")
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
        challenger = mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    fed = registry["customers"].set_index("customer_id").loc[1:2 * REQUESTS, ["x1", "x2"]]
    expected = pd.Series(challenger.predict(fed), index=fed.index)
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


def test_a_broken_shadow_never_fails_an_answer(registry: dict[str, Any]) -> None:
    answers, stats = shadowed(registry, "broken", "broken_shadow_scores")
    assert len(answers) == REQUESTS and all(len(a["predictions"]) == 2 for a in answers)
    assert stats.failed == REQUESTS and stats.written == 0
    assert "this shadow model is broken" in (stats.last_error or "")
    assert not registry["warehouse"].table_exists("broken_shadow_scores")


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


def test_a_full_queue_drops_the_sample_rather_than_wait(tracking_store: Any) -> None:
    from knot_prefect.serving.model_holder import ModelHolder
    from knot_prefect.serving.service import score_frame
    from knot_prefect.serving.shadow import ShadowScorer

    # Not started: nothing takes from the queue, as under a shadow slower than the load.
    holder = ModelHolder(MODEL, "challenger", tracking_store, plan_for=lambda inputs: None)  # type: ignore[arg-type,return-value]
    written: list[Any] = []
    request = ([{"customer_id": 1}], {"x1": [0.1], "x2": [0.2]}, [{"prediction": 1}], 1,
               1.0, "2026-01-01T00:00:00+00:00")
    bounded = ShadowScorer(holder, "champion", score_frame, written.append, queue_size=1)
    assert bounded.offer(*request) and not bounded.offer(*request)
    assert (bounded.stats.sampled, bounded.stats.dropped) == (1, 1)
    unsampled = ShadowScorer(holder, "champion", score_frame, written.append, sample=0.0)
    assert not unsampled.offer(*request)
    assert (unsampled.stats.offered, unsampled.stats.sampled) == (1, 0)
    assert written == []


def test_queued_requests_are_scored_together_in_one_model_call(
        registry: dict[str, Any]) -> None:
    from knot_prefect.serving.model_holder import ModelHolder
    from knot_prefect.serving.service import score_frame
    from knot_prefect.serving.shadow import ShadowScorer

    holder = ModelHolder(MODEL, "challenger", registry["tracking"],
                         plan_for=lambda inputs: None)  # type: ignore[arg-type,return-value]
    holder.refresh()
    calls: list[int] = []

    def counted(served: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
        calls.append(len(frame))
        return score_frame(served, frame)

    written: list[pd.DataFrame] = []
    scorer = ShadowScorer(holder, "champion", counted, written.append)
    fed = registry["customers"].set_index("customer_id").loc[1:5, ["x1", "x2"]]
    for customer, (x1, x2) in fed.iterrows():  # queued while the shadow is not started
        assert scorer.offer([{"customer_id": customer}], {"x1": [x1], "x2": [x2]},
                            [{"prediction": 0}], 1, 1.0, "2026-01-01T00:00:00+00:00")
    scorer.start()
    try:
        assert scorer.drain(timeout=60)
    finally:
        scorer.stop()
    assert calls == [5]
    [table] = written
    expected = score_frame(holder.current, fed.reset_index(drop=True))
    assert list(table["entity"]) == [json.dumps({"customer_id": c}) for c in fed.index]
    assert [json.loads(p) for p in table["shadow_prediction"]] == [
        answer["prediction"] for answer in expected]
    assert (scorer.stats.scored, scorer.stats.written) == (5, 5)
