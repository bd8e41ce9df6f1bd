"""snowflake-feast-online: SnowflakeWarehouse on fakesnow (Snowflake emulated in-process
on DuckDB), online features from Feast's SQLite online store."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.documents import apply_file
from tests.recipes.conftest import RECIPES, load_recipe

pytestmark = pytest.mark.heavy

RECIPE = RECIPES / "snowflake-feast-online"
CUSTOMERS = 300
BAD_PLANS = 3
MODEL = "churn-recipe-sf"


def test_online_scoring_merges_predictions_into_snowflake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fakesnow

    from knot_prefect.blocks.warehouses.snowflake import SnowflakeWarehouse

    modules = load_recipe("snowflake-feast-online")
    repo = tmp_path / "feature_repo"
    shutil.copytree(RECIPE / "feature_repo", repo, ignore=shutil.ignore_patterns("data"))
    monkeypatch.setenv("KNOT_HOME", str(tmp_path / ".knot"))
    password = "sf-recipe-password-value"
    with fakesnow.patch():
        apply_file(RECIPE / "blocks.yaml", environ={
            "SNOWFLAKE_ACCOUNT": "emulated", "SNOWFLAKE_USER": "ml",
            "SNOWFLAKE_PASSWORD": password, "SNOWFLAKE_DATABASE": "ANALYTICS",
            "FEATURE_REPO": str(repo),
        })
        warehouse = SnowflakeWarehouse.load("sf-warehouse")
        assert warehouse.credentials.password.get_secret_value() == password
        assert password not in repr(warehouse)

        written = modules["generate_data"].generate(customers=CUSTOMERS, seed=5)
        assert written["customers"] == CUSTOMERS
        first: dict[str, Any] = modules["pipeline"].churn_pipeline(model_name=MODEL)

        # Training used point-in-time features; scoring read the online store, which
        # the pipeline had materialized.
        assert first["training"]["promotion"]["decision"] == "promoted"
        assert first["training"]["training_rows"] + first["training"]["test_rows"] == CUSTOMERS
        materialized = sum(int(v.get("rows", 0)) for v in first["materialized"]["materialized"])
        assert materialized >= CUSTOMERS
        with sqlite3.connect(repo / "data" / "online_store.db") as online:
            tables = [r[0] for r in online.execute(
                "select name from sqlite_master where type = 'table'")]
        assert any(t.endswith("customer_activity") for t in tables), tables
        scoring = first["scoring"]
        assert scoring["feature_source"] == "online"
        assert scoring["rows_quarantined"] == BAD_PLANS

        query = ('select "customer_id", "probability", "model_version", "flow_run_id" '
                 'from "churn_predictions"')
        table = warehouse.read(query)
        assert len(table) == CUSTOMERS - BAD_PLANS and table["customer_id"].is_unique
        assert table["probability"].between(0, 1).all()
        assert set(table["model_version"].astype(int)) == {first["training"]["model_version"]}

        # Again: MERGE by key, one row per customer, the second run's lineage on each.
        modules["pipeline"].churn_pipeline(model_name=MODEL)
        again = warehouse.read(query)
        assert len(again) == CUSTOMERS - BAD_PLANS and again["customer_id"].is_unique
        assert again["flow_run_id"].nunique() == 1
        assert set(again["flow_run_id"]) != set(table["flow_run_id"])
