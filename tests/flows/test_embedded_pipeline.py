"""The flow templates end to end on embedded defaults: DuckDB, local Feast, MLflow on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import State

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
from knot_prefect.demo.params import (
    monitoring_parameters,
    scoring_parameters,
    training_parameters,
)
from knot_prefect.flows import (
    batch_inference_flow,
    data_quality_flow,
    monitoring_flow,
    training_flow,
)
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from knot_prefect.lineage.query import explain_prediction
from tests.flows.conftest import CUSTOMERS

pytestmark = pytest.mark.heavy

BAD_ROWS = 3  # customers with an unknown plan, see knot_prefect.demo.seed


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


def test_train_score_monitor_and_explain(demo_world: dict[str, Any]) -> None:
    # -- training: registered, promoted, reference profile stored ----------------------
    first = value(training_flow(**training_parameters(model_name="churn-embedded")))
    assert first["promotion"]["decision"] == "promoted"
    assert first["metrics"]["roc_auc"] > 0.7
    assert first["training_rows"] + first["test_rows"] == CUSTOMERS
    tracking = MLflowTracking.load("local-mlflow")
    client = tracking.get_client()
    champion = client.get_model_version_by_alias("churn-embedded", "champion")
    assert int(champion.version) == first["model_version"]
    assert champion.tags["knot.reference_profile"].endswith("reference_profile.json")
    assert champion.tags["knot.feature_views"].startswith("customer_activity@")

    # A second run trains a challenger on the same data: it must beat the champion.
    second = value(training_flow(**training_parameters(model_name="churn-embedded")))
    assert second["model_version"] == first["model_version"] + 1
    assert second["promotion"]["decision"] == "kept-champion"
    assert client.get_model_version_by_alias("churn-embedded", "champion").version == (
        champion.version
    )

    # -- batch inference: quarantine, lineage on every row, upsert by key --------------
    scored = value(batch_inference_flow(**scoring_parameters(
        model_name="churn-embedded", as_of=demo_world["as_of"], output_table="scores_embedded")))
    assert scored["rows_quarantined"] == BAD_ROWS
    assert scored["rows_published"] == CUSTOMERS - BAD_ROWS
    warehouse = DuckDBWarehouse.load("local-warehouse")
    table = warehouse.read("select * from scores_embedded")
    assert len(table) == CUSTOMERS - BAD_ROWS
    assert table["customer_id"].is_unique
    assert table[list(LINEAGE_COLUMNS)].notna().all().all()
    assert set(table["contract_version"]) == {scored["contract_version"]}
    assert set(table["model_version"]) == {first["model_version"]}
    # One score and one label per customer, not a column per class.
    assert table["probability"].between(0, 1).all()
    assert set(table["prediction"]) <= {0, 1}
    assert (table["prediction"] == (table["probability"] >= 0.5)).all()
    assert not {"prediction_0", "prediction_1"} & set(table.columns)
    quarantined = warehouse.read("select * from churn_scoring_quarantine")
    assert set(quarantined["plan"]) == {"legacy-unknown"}

    # Running again never duplicates a key.
    value(batch_inference_flow(**scoring_parameters(
        model_name="churn-embedded", as_of=demo_world["as_of"], output_table="scores_embedded")))
    again = warehouse.read("select customer_id, count(*) as n from scores_embedded group by 1")
    assert len(again) == CUSTOMERS - BAD_ROWS and set(again["n"]) == {1}

    # -- lineage: which data, features and model produced this row ---------------------
    key = int(table["customer_id"].iloc[0])
    answer = explain_prediction(warehouse, "scores_embedded", key, tracking=tracking)
    assert answer.key == {"customer_id": key}
    assert answer.lineage["model_name"] == "churn-embedded"
    assert answer.model["version"] == first["model_version"]
    assert "champion" in answer.model["aliases"]
    assert answer.lineage["feature_views"] == champion.tags["knot.feature_views"]
    assert answer.flow_run["state"] in {"Completed", "CompletedWithWarnings"}

    # -- monitoring: same population as training, so no drift ------------------------
    drift = value(monitoring_flow(**monitoring_parameters(
        model_name="churn-embedded", predictions_table="scores_embedded")))
    assert {"sessions_7d", "probability"} <= set(drift)
    assert all(item["psi"] < 0.25 for item in drift.values())


def test_data_quality_flow_finishes_with_warnings(demo_world: dict[str, Any]) -> None:
    state = data_quality_flow(
        "customers", contract="churn-scoring",
        checks=[{"metric": "row_count", "lower": 1, "severity": "error"}],
        return_state=True,
    )
    assert state.name == "CompletedWithWarnings"
    summary = state.result()
    assert summary["rows_read"] == CUSTOMERS
    assert summary["rows_valid"] == CUSTOMERS  # warn keeps every row
    assert "churn-scoring" in state.message


def test_unknown_block_name_lists_existing_documents(demo_world: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="local-warehouse"):
        training_flow(**training_parameters(warehouse="no-such-warehouse"))


def test_scoring_rows_without_key_column_say_which(demo_world: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"key column.*\['account_id'\]"):
        batch_inference_flow(**scoring_parameters(
            entity_sql="select plan from customers", key_columns=["account_id"],
            contract=None))
