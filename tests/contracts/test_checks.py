"""Metric checks: metrics of frames, severities, final state, artifacts, events, MLflow."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from prefect import flow

from knot_prefect.checks import metrics
from knot_prefect.checks.completion import WARNINGS_STATE_NAME, finish_with_warnings
from knot_prefect.checks.result import CheckFailedError, evaluate
from knot_prefect.checks.tasks import check


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, None, 5.0],
            "seen_at": pd.to_datetime(
                ["2024-01-01 00:00", "2024-01-02 00:00", "2024-01-03 00:00", None]
            ),
        }
    )


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_metrics(frame: pd.DataFrame, kind: str) -> None:
    data: Any = frame if kind == "pandas" else pl.from_pandas(frame)
    assert metrics.row_count(data) == 4
    assert metrics.null_fraction(data, "x") == 0.25
    assert metrics.column_min(data, "x") == 1.0
    assert metrics.column_max(data, "x") == 5.0
    assert metrics.column_mean(data, "x") == pytest.approx(8 / 3)
    assert metrics.column_std(data, "x") == pytest.approx(pd.Series([1.0, 2.0, 5.0]).std())
    now = dt.datetime(2024, 1, 3, 6, tzinfo=dt.UTC)
    assert metrics.freshness(data, "seen_at", now=now) == 6 * 3600
    assert metrics.metric(lambda f: metrics.row_count(f) * 2, data) == 8.0


def test_metric_errors_name_the_column(frame: pd.DataFrame) -> None:
    with pytest.raises(
        metrics.MetricError, match="Column 'y' is not in the frame; its columns are x, seen_at"
    ):
        metrics.column_max(frame, "y")
    assert math.isinf(metrics.freshness(frame.iloc[3:], "seen_at"))


def test_evaluate_bounds() -> None:
    assert evaluate(5, "n", lower=1, upper=10).passed
    assert not evaluate(0, "n", lower=1).passed
    assert evaluate(11, "n", upper=10).message == "n = 11 is above the upper bound 10"
    assert not evaluate(3, "n", equal=4).passed
    assert evaluate(3.0005, "n", equal=3, tolerance=0.001).passed
    assert not evaluate(math.nan, "n", lower=0).passed
    with pytest.raises(ValueError, match="at least one of"):
        evaluate(1, "n")
    with pytest.raises(ValueError, match="unknown severity"):
        evaluate(1, "n", lower=0, severity="fatal")


def test_warning_completes_with_warnings(artifacts: Any, events: Any) -> None:
    name = f"auc-{uuid.uuid4().hex[:6]}"

    @flow
    def train() -> Any:
        check(0.62, name, lower=0.7, severity="warning")
        check(lambda: 1000, f"{name}-rows", lower=1)
        return finish_with_warnings("model-v1")

    state = train(return_state=True)
    assert state.is_completed()
    assert state.name == WARNINGS_STATE_NAME
    assert f"{name} = 0.62 is below the lower bound 0.7" in state.message
    assert "rows" not in state.message
    assert state.result() == "model-v1"
    [artifact] = artifacts(f"check-{name}")
    assert json.loads(artifact.data)[0]["status"] == "warning"
    [event] = events(f"knot.check.{name}")
    assert event.event == "knot.check.warning"
    assert event.payload["value"] == 0.62


def test_no_warning_keeps_the_plain_result() -> None:
    @flow
    def fine() -> Any:
        check(0.9, f"auc-{uuid.uuid4().hex[:6]}", lower=0.7)
        return finish_with_warnings(42)

    state = fine(return_state=True)
    assert state.name == "Completed"
    assert state.result() == 42


def test_error_fails_the_flow_before_publishing(artifacts: Any, events: Any) -> None:
    name = f"rows-{uuid.uuid4().hex[:6]}"
    published: list[str] = []

    @flow
    def score() -> None:
        check(0, name, lower=1, severity="error")
        published.append("predictions")

    state = score(return_state=True)
    assert state.is_failed()
    assert published == []
    with pytest.raises(CheckFailedError, match=f"Check '{name}' failed: {name} = 0 is below"):
        state.result()
    [artifact] = artifacts(f"check-{name}")
    assert json.loads(artifact.data)[0]["status"] == "failed"
    assert [e.event for e in events(f"knot.check.{name}")] == ["knot.check.failed"]


def test_history_is_kept_per_check_name(artifacts: Any) -> None:
    name = f"drift-{uuid.uuid4().hex[:6]}"

    @flow
    def monitor(value: float) -> None:
        check(value, name, upper=0.2)

    for value in (0.1, 0.15, 0.3):
        monitor(value)
    history = [json.loads(a.data)[0]["value"] for a in artifacts(f"check-{name}")]
    assert history == [0.1, 0.15, 0.3]


@pytest.mark.heavy
def test_values_logged_to_an_active_mlflow_run(tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            check.fn(0.81, "auc", lower=0.5)
        check.fn(0.5, "other", lower=0.1, mlflow_run_id=run.info.run_id)
        logged = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
    finally:
        mlflow.set_tracking_uri("")
    assert logged == {"check.auc": 0.81, "check.other": 0.5}
