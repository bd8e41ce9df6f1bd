"""postgres-mlflow-server: the training and batch-inference templates on a real PostgreSQL
(warehouse and Feast offline store) and a real `mlflow server`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse
from urllib.request import urlopen

import pytest

from knot_prefect.documents import apply_file
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.recipes.conftest import RECIPES, load_recipe

pytestmark = pytest.mark.heavy

RECIPE = RECIPES / "postgres-mlflow-server"
CUSTOMERS = 300
BAD_PLANS = 3
MODEL = "churn-recipe-pg"


def test_train_promote_and_publish_each_key_once(
    postgres_database: dict[str, str], mlflow_server: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    from knot_prefect import MLflowTracking

    modules = load_recipe("postgres-mlflow-server")
    dsn = urlparse(postgres_database["dsn"])
    repo = tmp_path / "feature_repo"
    shutil.copytree(RECIPE / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
    monkeypatch.setenv("KNOT_HOME", str(tmp_path / ".knot"))
    applied = apply_file(RECIPE / "blocks.yaml", environ={
        "PG_HOST": str(dsn.hostname), "PG_PORT": str(dsn.port),
        "PG_DATABASE": postgres_database["name"], "PG_USER": str(dsn.username),
        "PG_PASSWORD": "unused-by-trust-auth", "MLFLOW_TRACKING_URI": mlflow_server,
        "FEATURE_REPO": str(repo),
    })
    assert {a.name for a in applied} >= {"pg-warehouse", "pg-features", "mlflow-server"}

    written = modules["generate_data"].generate(customers=CUSTOMERS, seed=5)
    assert written["customers"] == CUSTOMERS

    churn_pipeline = modules["pipeline"].churn_pipeline
    first: dict[str, Any] = churn_pipeline(model_name=MODEL)
    training, scoring = first["training"], first["scoring"]
    assert training["training_rows"] + training["test_rows"] == CUSTOMERS
    assert training["metrics"]["roc_auc"] > 0.7
    assert training["promotion"]["decision"] == "promoted"
    assert scoring["rows_quarantined"] == BAD_PLANS

    # Registered and promoted on the MLflow server (asked over its REST API).
    query = urlencode({"name": MODEL, "alias": "champion"})
    with urlopen(f"{mlflow_server}/api/2.0/mlflow/registered-models/alias?{query}") as reply:
        champion = json.load(reply)["model_version"]
    assert int(champion["version"]) == training["model_version"]
    run = MLflowTracking.load("mlflow-server").get_client().get_run(champion["run_id"])
    assert run.info.status == "FINISHED"

    def predictions() -> list[tuple[Any, ...]]:
        columns = ", ".join(["customer_id", "probability", *LINEAGE_COLUMNS])
        with psycopg.connect(postgres_database["dsn"]) as connection:
            return connection.execute(f"select {columns} from churn_predictions").fetchall()

    rows = predictions()
    assert len(rows) == CUSTOMERS - BAD_PLANS
    assert len({row[0] for row in rows}) == len(rows)
    assert all(value is not None for row in rows for value in row)
    lineage = dict(zip(LINEAGE_COLUMNS, rows[0][2:], strict=True))
    assert lineage["model_name"] == MODEL
    assert int(lineage["model_version"]) == training["model_version"]
    first_run = {row[2 + list(LINEAGE_COLUMNS).index("flow_run_id")] for row in rows}
    assert len(first_run) == 1

    # Again: a challenger on the same data keeps the champion; each key is published
    # exactly once, now carrying the second run's lineage.
    second = churn_pipeline(model_name=MODEL)
    assert second["training"]["promotion"]["decision"] == "kept-champion"
    assert second["training"]["model_version"] == training["model_version"] + 1
    again = predictions()
    assert len(again) == CUSTOMERS - BAD_PLANS
    assert len({row[0] for row in again}) == len(again)
    second_run = {row[2 + list(LINEAGE_COLUMNS).index("flow_run_id")] for row in again}
    assert len(second_run) == 1 and second_run != first_run
