"""train -> evaluate -> register -> promote / rollback -> load by alias -> predict.

All on the embedded SQLite store, with tiny scikit-learn models.
"""

from __future__ import annotations

import time
from typing import Any

import mlflow
import pandas as pd
import pytest
from prefect import flow
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from knot_prefect.errors import ConfigurationError
from knot_prefect.tasks import (
    evaluate,
    load_model,
    predict,
    predict_frame,
    promote,
    register_model,
    rollback,
    train,
)
from knot_prefect.tasks.mlflow_registry import RegistryError
from knot_prefect.tracking.fluent import fluent_store
from knot_prefect.tracking.scoring import score
from tests.tracking.conftest import churn_frame, flow_run_artifacts, unique


def fit_logistic(data: pd.DataFrame, params: dict[str, Any]) -> LogisticRegression:
    return LogisticRegression(**params).fit(data.drop(columns=["label"]), data["label"])


def fit_one_feature(data: pd.DataFrame, params: dict[str, Any]) -> LogisticRegression:
    return LogisticRegression().fit(data[["f0"]], data["label"])


def fit_constant(data: pd.DataFrame, params: dict[str, Any]) -> DummyClassifier:
    return DummyClassifier(strategy="most_frequent").fit(
        data.drop(columns=["label"]), data["label"]
    )


@flow
def train_and_register(
    tracking: MLflowTracking, data: pd.DataFrame, name: str, fit: Any, params: dict[str, Any]
) -> tuple[str, int]:
    uri = train(fit, data, params, tracking, target="label")
    return uri, register_model(uri, name, tracking).version


def test_train_logs_params_autolog_metrics_and_a_model_with_signature(
    embedded: MLflowTracking, frame: pd.DataFrame
) -> None:
    @flow
    def training() -> str:
        return train(fit_logistic, frame, {"C": 0.5}, embedded, target="label")

    uri = training()
    assert uri.startswith("models:/")
    client = embedded.get_client()
    (run,) = client.search_runs([embedded.get_or_create_experiment_id()])
    assert run.data.params["C"] == "0.5"
    assert "training_accuracy_score" in run.data.metrics  # From scikit-learn autologging.
    assert run.data.tags["knot.model_uri"] == uri
    with fluent_store(embedded):
        info = mlflow.models.get_model_info(uri)
    assert info.signature.inputs.input_names() == ["f0", "f1", "f2", "f3"]


def test_train_explains_what_it_cannot_log(embedded: MLflowTracking, frame: pd.DataFrame) -> None:
    @flow
    def training() -> str:
        return train(lambda data, params: object(), frame, {}, embedded)

    with pytest.raises(ConfigurationError, match="cannot log by itself"):
        training()


def test_evaluate_logs_metrics_and_plots(embedded: MLflowTracking, frame: pd.DataFrame) -> None:
    @flow
    def pipeline() -> Any:
        uri = train(fit_logistic, frame, {}, embedded, target="label")
        return evaluate(uri, churn_frame(seed=1), "label", "classification", embedded)

    state = pipeline(return_state=True)
    result = state.result()
    assert 0.8 < result.metrics["accuracy"] <= 1.0
    assert {"f1", "roc_auc", "log_loss", "precision", "recall"} <= set(result.metrics)
    client = embedded.get_client()
    run = client.get_run(result.run_id)
    assert run.data.metrics["eval_accuracy"] == pytest.approx(result.metrics["accuracy"])
    listed = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    assert listed == {"evaluation/confusion_matrix.png", "evaluation/roc.png"}
    summaries = [
        a
        for a in flow_run_artifacts(state.state_details.flow_run_id)
        if a.key == "model-evaluation"
    ]
    assert len(summaries) == 1 and "accuracy" in str(summaries[0].data)


def test_evaluate_regression_plots_residuals(embedded: MLflowTracking) -> None:
    data = churn_frame(seed=3).rename(columns={"label": "y"})
    data["y"] = 3.0 * data["f0"] - data["f1"]

    @flow
    def pipeline() -> Any:
        uri = train(
            lambda d, p: LinearRegression().fit(d.drop(columns=["y"]), d["y"]),
            data,
            {},
            embedded,
            target="y",
        )
        return evaluate(uri, data, "y", "regression", embedded)

    result = pipeline()
    assert result.metrics["r2"] == pytest.approx(1.0)
    assert result.metrics["rmse"] < 1e-6
    assert result.plots == ["evaluation/residuals.png"]


def test_register_is_idempotent(embedded: MLflowTracking, frame: pd.DataFrame) -> None:
    name = unique("model")

    @flow
    def pipeline() -> tuple[int, int]:
        uri = train(fit_logistic, frame, {}, embedded, target="label")
        return register_model(uri, name, embedded).version, register_model(
            uri, name, embedded
        ).version

    assert pipeline() == (1, 1)
    assert len(embedded.get_client().search_model_versions(f"name = '{name}'")) == 1


def promoted_events(name: str) -> list[dict[str, Any]]:
    """``knot.model.promoted`` events about ``name`` stored by the Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/events/filter",
            json={
                "filter": {
                    "event": {"name": ["knot.model.promoted"]},
                    "resource": {"id": [f"knot.mlflow.registered-model.{name}"]},
                    "occurred": {"since": "2000-01-01T00:00:00Z"},
                },
                "limit": 50,
            },
        )
    return response.json()["events"]


def wait_for_events(name: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = promoted_events(name)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_champion_challenger_promotion_and_rollback(
    embedded: MLflowTracking, frame: pd.DataFrame
) -> None:
    name = unique("churn")
    holdout = churn_frame(seed=7)
    good_uri, good = train_and_register(embedded, frame, name, fit_one_feature, {})
    weak_uri, weak = train_and_register(embedded, frame, name, fit_constant, {})
    _, better = train_and_register(embedded, frame, name, fit_logistic, {})

    @flow
    def contest(version: int) -> Any:
        return promote(
            name,
            version,
            "champion",
            metric="accuracy",
            data=holdout,
            target="label",
            tracking=embedded,
        )

    # No champion yet: the first version takes the alias.
    first = contest(good)
    assert first.promoted and first.champion_version is None
    client = embedded.get_client()
    assert int(client.get_registered_model(name).aliases["champion"]) == good

    # A worse challenger: nothing moves, the flow succeeds, the decision is recorded.
    state = contest(weak, return_state=True)
    decision = state.result()
    assert state.is_completed() and not decision.promoted
    assert decision.decision == "kept-champion"
    assert decision.champion_score > decision.challenger_score
    with fluent_store(embedded):  # Both were scored on the same rows.
        expected = {
            "champion": score(good_uri, holdout, "label", "classification")["accuracy"],
            "challenger": score(weak_uri, holdout, "label", "classification")["accuracy"],
        }
    assert decision.champion_score == pytest.approx(expected["champion"])
    assert decision.challenger_score == pytest.approx(expected["challenger"])
    assert int(client.get_registered_model(name).aliases["champion"]) == good
    tags = client.get_model_version(name, str(weak)).tags
    assert tags["knot.promotion.champion.decision"] == "kept-champion"
    assert float(tags["knot.promotion.champion.challenger_score"]) == decision.challenger_score
    assert float(tags["knot.promotion.champion.champion_score"]) == decision.champion_score
    assert tags["knot.promotion.champion.champion_version"] == str(good)
    reports = [
        a for a in flow_run_artifacts(state.state_details.flow_run_id) if a.key == "model-promotion"
    ]
    assert len(reports) == 1 and "kept-champion" in str(reports[0].data)

    # A better challenger (it sees every informative feature) takes the alias.
    win = contest(better)
    assert win.promoted and win.champion_version == good
    assert win.challenger_score > win.champion_score
    assert int(client.get_registered_model(name).aliases["champion"]) == better
    events = wait_for_events(name, 2)
    versions = sorted(e["resource"]["knot.model.version"] for e in events)
    assert versions == sorted([str(good), str(better)])

    # Rolling back restores the previous holder; a second rollback has nowhere to go.
    @flow
    def undo() -> Any:
        return rollback(name, "champion", embedded)

    move = undo()
    assert (move.from_version, move.to_version) == (better, good)
    assert int(client.get_registered_model(name).aliases["champion"]) == good
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        undo()


def test_promote_requires_data_once_a_champion_exists(
    embedded: MLflowTracking, frame: pd.DataFrame
) -> None:
    name = unique("needs-data")
    _, first = train_and_register(embedded, frame, name, fit_logistic, {})
    _, second = train_and_register(embedded, frame, name, fit_constant, {})

    @flow
    def contest(version: int) -> Any:
        return promote(name, version, tracking=embedded)

    assert contest(first).promoted
    with pytest.raises(ConfigurationError, match="needs data= and target="):
        contest(second)


def test_load_model_by_alias_and_predict_in_chunks(
    embedded: MLflowTracking, frame: pd.DataFrame
) -> None:
    name = unique("scorer")
    _, version = train_and_register(embedded, frame, name, fit_logistic, {})
    embedded.get_client().set_registered_model_alias(name, "champion", str(version))
    rows = churn_frame(rows=1003, seed=5).drop(columns=["label"])
    rows["customer_id"] = range(len(rows))  # A key column the model does not use.

    @flow
    def scoring() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
        model = load_model(name, "champion", embedded)
        return model, predict(model, rows, batch_rows=100), predict(model, rows, batch_rows=10_000)

    model, chunked, whole = scoring()
    assert model.version == version and model.uri == f"models:/{name}/{version}"
    assert len(chunked) == len(rows)
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked.index.equals(rows.index)

    with pytest.raises(ConfigurationError, match=r"lack the model's input columns \['f3'\]"):
        predict_frame(rows.drop(columns=["f3"]), model)


def test_missing_alias_and_model_list_what_exists(
    embedded: MLflowTracking, frame: pd.DataFrame
) -> None:
    name = unique("aliases")
    _, version = train_and_register(embedded, frame, name, fit_logistic, {})
    embedded.get_client().set_registered_model_alias(name, "staging", str(version))

    @flow
    def loading(model_name: str, alias: str) -> Any:
        return load_model(model_name, alias, embedded)

    with pytest.raises(RegistryError, match=rf"no alias 'champion'.*staging -> version {version}"):
        loading(name, "champion")
    with pytest.raises(RegistryError, match=rf"No registered model named 'absent'.*{name}"):
        loading("absent", "champion")


@pytest.mark.services
@pytest.mark.heavy
def test_predict_frame_inside_dask_partitions(
    embedded: MLflowTracking, frame: pd.DataFrame, dask_scheduler: str
) -> None:
    import dask.dataframe as dd
    from distributed import Client

    name = unique("dask")
    _, version = train_and_register(embedded, frame, name, fit_logistic, {})
    embedded.get_client().set_registered_model_alias(name, "champion", str(version))

    @flow
    def loading() -> Any:
        return load_model(name, "champion", embedded)

    model = loading()
    rows = churn_frame(rows=5000, seed=9).drop(columns=["label"])
    expected = predict_frame(rows, model)
    with Client(dask_scheduler):
        partitions = dd.from_pandas(rows, npartitions=4)
        scored = partitions.map_partitions(
            predict_frame, model, 500, meta={"prediction": "int64"}
        ).compute()
    pd.testing.assert_frame_equal(scored.sort_index(), expected)


@pytest.mark.services
def test_lifecycle_on_a_real_server_with_a_token(
    served: MLflowTracking, frame: pd.DataFrame, token_proxy: Any
) -> None:
    name = unique("served")
    holdout = churn_frame(seed=13)
    _, first = train_and_register(served, frame, name, fit_one_feature, {})
    _, second = train_and_register(served, frame, name, fit_logistic, {})

    @flow
    def lifecycle() -> tuple[Any, Any, Any, pd.DataFrame]:
        opening = promote(name, first, data=holdout, target="label", tracking=served)
        contest = promote(name, second, data=holdout, target="label", tracking=served)
        model = load_model(name, "champion", served)
        return opening, contest, model, predict(model, holdout.drop(columns=["label"]), 64)

    opening, contest, model, scored = lifecycle()
    assert opening.promoted and contest.promoted and contest.champion_version == first
    assert model.version == second and len(scored) == len(holdout)
    assert int(served.get_client().get_registered_model(name).aliases["champion"]) == second
    assert token_proxy.authorized > 0  # Every call above went through the proxy.
