"""Built-in trainers, the trainer contract, and the shape of predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from knot_prefect.tasks.mlflow_predict import predict_frame
from knot_prefect.trainers.builtin import gradient_boosting, lightgbm, xgboost
from knot_prefect.trainers.contract import (
    TrainerContractError,
    call_trainer,
    infer_task,
    resolve_trainer,
)
from tests.templates.datasets import DATASETS


@pytest.fixture
def tracking(tmp_path: Path) -> Any:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    yield
    mlflow.set_tracking_uri(previous)


@pytest.mark.parametrize("name", list(DATASETS))
def test_gradient_boosting_logs_a_model_that_loads_back_and_scores_in_one_shape(
    tracking: Any, name: str
) -> None:
    assert_trains_loads_and_scores(gradient_boosting, name, {"max_iter": 60})


@pytest.mark.parametrize("name", ["loans", "diabetes"])
def test_lightgbm_logs_a_model_that_loads_back_and_scores_in_one_shape(
    tracking: Any, name: str
) -> None:
    # lightgbm is a dev dependency: this runs (never skips) in the test environment.
    assert_trains_loads_and_scores(lightgbm, name, {"n_estimators": 40})


def assert_trains_loads_and_scores(trainer: Any, name: str, params: dict[str, Any]) -> None:
    """The trainer's logged model loads back alone and predicts in the task's shape."""
    data = DATASETS[name]()
    frame = data.frame.drop(columns=[data.key])  # the timestamp stays: left out by the trainer
    with mlflow.start_run():
        uri = call_trainer(trainer, frame, data.target, params)
    # Loads without any list of trusted types, in a fresh load.
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.metadata == {"knot_task": data.task}
    rows = frame.drop(columns=[data.target]).sample(50, random_state=1)
    predictions = predict_frame(rows, model)
    assert list(predictions.index) == list(rows.index)
    labels = sorted(set(frame[data.target]))
    if data.task == "regression":
        assert list(predictions.columns) == ["prediction"]
    elif data.task == "binary":
        assert list(predictions.columns) == ["prediction", "probability"]
        assert set(predictions["prediction"]) <= set(labels)
        assert predictions["probability"].between(0, 1).all()
    else:
        assert list(predictions.columns) == [
            "prediction", *[f"probability_{label}" for label in labels]]


def test_unseen_and_missing_categories_still_score(tracking: Any) -> None:
    data = DATASETS["loans"]()
    frame = data.frame.drop(columns=[data.key, data.timestamp])
    with mlflow.start_run():
        uri = call_trainer(gradient_boosting, frame, data.target, {})
    rows = frame.drop(columns=[data.target]).head(3).astype({"region": object})
    rows.loc[rows.index[0], "region"] = "atlantis"
    rows.loc[rows.index[1], "product"] = None
    predictions = predict_frame(rows, mlflow.pyfunc.load_model(uri))
    assert predictions["probability"].between(0, 1).all()


def test_task_is_inferred_from_the_label() -> None:
    assert infer_task(pd.Series(["yes", "no", "yes"])) == "binary"
    assert infer_task(pd.Series([0, 1, 2, 1])) == "multiclass"
    assert infer_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"


def test_target_and_task_reach_a_custom_trainer() -> None:
    seen: dict[str, Any] = {}

    def trainer(data: pd.DataFrame, target: str, params: dict[str, Any], task: str) -> str:
        seen.update(target=target, params=params, task=task, columns=list(data.columns))
        return "models:/m-1"

    frame = pd.DataFrame({"x": [1.0], "label": [0]})
    assert call_trainer(trainer, frame, "label", {"depth": 3}, "binary") == "models:/m-1"
    assert seen == {"target": "label", "params": {"depth": 3}, "task": "binary",
                    "columns": ["x", "label"]}


def test_two_argument_trainers_keep_working() -> None:
    def trainer(data: pd.DataFrame, params: dict[str, Any]) -> str:
        return f"models:/{len(data)}-{params['n']}"

    assert call_trainer(trainer, pd.DataFrame({"x": [1, 2]}), "y", {"n": 5}) == "models:/2-5"


def test_a_trainer_breaking_the_contract_is_told_how() -> None:
    def one_argument(data: pd.DataFrame) -> None: ...

    with pytest.raises(TrainerContractError, match=r"fn\(data, target, params\)"):
        call_trainer(one_argument, pd.DataFrame(), "y", {})


def test_a_failing_trainer_names_itself_the_call_and_the_columns() -> None:
    def hard_coded(data: pd.DataFrame, target: str, params: dict[str, Any]) -> None:
        data["churned"]  # a label the data does not hold

    frame = pd.DataFrame({"x": [1.0], "outcome": [1]})
    with pytest.raises(TrainerContractError) as raised:
        call_trainer(hard_coded, frame, "outcome", {})
    message = str(raised.value)
    assert "hard_coded" in message and "KeyError" in message
    assert "'outcome'" in message and "['x', 'outcome']" in message
    assert isinstance(raised.value.__cause__, KeyError)


def test_built_in_trainers_resolve_by_name_and_say_what_is_missing() -> None:
    assert resolve_trainer("gradient_boosting") is gradient_boosting
    for trainer, package in ((xgboost, "xgboost"), (lightgbm, "lightgbm")):
        try:
            __import__(package)
        except ImportError:
            with pytest.raises(TrainerContractError, match=f"pip install {package}"):
                trainer(pd.DataFrame({"x": [1.0], "y": [0]}), "y", {})
