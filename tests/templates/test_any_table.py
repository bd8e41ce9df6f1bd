"""The flow templates and ``knot serve`` on a team's own tables, configured once in a spec.

No demo document exists while these run; the tables' keys, labels and timestamps are
named their own way, and the model reads each table's own columns (no feature store).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from prefect.states import State

from knot_prefect.blocks.model_spec import ModelSpec
from knot_prefect.flows import (
    batch_inference_flow,
    data_quality_flow,
    feature_materialization_flow,
    monitoring_flow,
    training_flow,
    tuning_flow,
)
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.templates.conftest import DEMO_NAMES
from tests.templates.datasets import DATASETS, Dataset
from tests.templates.serving import assert_serves_like_batch, served_in_process

pytestmark = pytest.mark.heavy

# Each flow called with nothing at all names the first thing it needs.
FIRST_MISSING = [
    (training_flow, "entity_sql"),
    (batch_inference_flow, "entity_sql"),
    (monitoring_flow, "model_name"),
    (data_quality_flow, "table_or_sql"),
    (feature_materialization_flow, "store"),
    (tuning_flow, "train_fn"),
]


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


def failure_text(flow: Any, **parameters: Any) -> str:
    """The error a flow run ends with (raised, or in its failed state)."""
    try:
        state = flow(**parameters, return_state=True)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    assert state.is_failed(), state
    with pytest.raises(Exception) as raised:
        state.result()
    return f"{state.message} {raised.value}"


def assert_no_demo_name(text: str) -> None:
    # Other tests of the session may have saved documents with demo names; the list of
    # existing documents is the server's, not a name the flow asks for.
    asked = re.sub(r"Existing documents: [^.]*\.", "", text)
    assert not [name for name in DEMO_NAMES if name in asked.lower()], text


@pytest.mark.parametrize(("flow", "parameter"), FIRST_MISSING,
                         ids=[flow.name for flow, _ in FIRST_MISSING])
def test_each_flow_names_what_it_needs_never_a_demo_name(
    team: dict[str, Any], flow: Any, parameter: str
) -> None:
    text = failure_text(flow)
    assert parameter in text
    assert_no_demo_name(text)


def test_named_parameters_but_no_blocks_name_the_block_parameter(team: dict[str, Any]) -> None:
    text = failure_text(training_flow, entity_sql="loans", target="defaulted",
                        model_name="loan-default")
    assert "warehouse=" in text
    assert_no_demo_name(text)


def test_keys_are_never_guessed_silently(team: dict[str, Any]) -> None:
    data = DATASETS["loans"]()
    team["warehouse"].write(data.frame, "loans_unkeyed", mode="replace")
    # No column ends in _id: the run is refused, naming key_columns.
    text = failure_text(training_flow, entity_sql="loans_unkeyed", target="defaulted",
                        model_name="loans-unkeyed", warehouse="team-warehouse",
                        tracking="team-mlflow")
    assert "key_columns" in text
    assert_no_demo_name(text)
    # Two candidates: ambiguous, refused too.
    team["warehouse"].write(
        data.frame.assign(branch_id=1, officer_id=2), "loans_two_ids")
    text = failure_text(training_flow, entity_sql="loans_two_ids", target="defaulted",
                        model_name="loans-two-ids", warehouse="team-warehouse",
                        tracking="team-mlflow")
    assert "key_columns" in text and "branch_id" in text and "officer_id" in text


def save_spec(data: Dataset, **overrides: Any) -> str:
    name = f"{data.name}-model"
    ModelSpec(
        source=f"{data.name}_rows",
        target=data.target,
        key_columns=[data.key],
        timestamp_column=data.timestamp,
        model_name=f"team-{data.name}",
        output_table=f"{data.name}_scores",
        warehouse="team-warehouse",
        tracking="team-mlflow",
        **overrides,
    ).save(name, overwrite=True)
    return name


def assert_prediction_shape(table: Any, data: Dataset) -> None:
    """One clear shape per task, whatever the model's own output was."""
    labels = set(data.frame[data.target])
    outputs = [c for c in table.columns if c not in LINEAGE_COLUMNS and c != data.key]
    if data.task == "regression":
        assert outputs == ["prediction"]
        assert table["prediction"].dtype.kind == "f"
        assert table["prediction"].nunique() > 10
    elif data.task == "binary":
        assert outputs == ["prediction", "probability"]
        assert set(table["prediction"]) <= labels
        assert table["probability"].between(0, 1).all()
        # The label is the positive class ("yes", the larger label) when it is likelier.
        assert (table["prediction"].eq("yes") == table["probability"].ge(0.5)).all()
    else:
        probabilities = [f"probability_{label}" for label in sorted(labels)]
        assert outputs == ["prediction", *probabilities]
        assert set(table["prediction"]) <= labels
        assert np.allclose(table[probabilities].sum(axis=1), 1.0)
        best = table[probabilities].idxmax(axis=1).str.removeprefix("probability_")
        assert (best == table["prediction"]).all()


@pytest.mark.parametrize("name", list(DATASETS))
def test_spec_trains_scores_and_monitors_a_teams_table(team: dict[str, Any], name: str) -> None:
    data = DATASETS[name]()
    warehouse = team["warehouse"]
    warehouse.write(data.frame, f"{name}_rows", mode="replace")
    spec = save_spec(data)  # no task: inferred from the label

    trained = value(training_flow(spec=spec))
    assert trained["task"] == data.task
    assert trained["promotion"]["decision"] == "promoted"
    assert trained["training_rows"] + trained["test_rows"] == len(data.frame)
    floor = {"r2": 0.2, "f1": 0.85, "roc_auc": 0.8}[data.metric]
    assert trained["metrics"][data.metric] > floor
    client = team["tracking"].get_client()
    champion = client.get_model_version_by_alias(f"team-{name}", "champion")
    assert champion.tags["knot.task"] == data.task
    assert champion.tags["knot.target"] == data.target
    assert champion.tags["knot.feature_views"] == "warehouse columns"

    scored = value(batch_inference_flow(spec=spec))
    assert scored["rows_published"] == len(data.frame)
    table = warehouse.read(f"select * from {name}_scores order by {data.key}")
    assert table[data.key].is_unique and len(table) == len(data.frame)
    filled = [c for c in LINEAGE_COLUMNS if c != "contract_version"]  # no contract given
    assert table[filled].notna().all().all()
    assert set(table["feature_views"]) == {"warehouse columns"}
    assert set(table["model_version"]) == {trained["model_version"]}
    assert_prediction_shape(table, data)

    drift = value(monitoring_flow(spec=spec))
    inputs = [c for c in data.frame.columns
              if c not in (data.key, data.target, data.timestamp)
              and data.frame[c].dtype.kind in "if"]
    assert set(inputs) <= set(drift)
    assert all(item["psi"] < 0.25 for item in drift.values())

    # knot serve --spec: each key's latest row of the table, without a feature store.
    with served_in_process(spec) as url:
        assert_serves_like_batch(url, data, table)


def test_explicit_parameters_override_the_spec(team: dict[str, Any]) -> None:
    data = DATASETS["loans"]()
    team["warehouse"].write(data.frame, "loans_rows", mode="replace")
    spec = save_spec(data, task="binary")
    trained = value(training_flow(spec=spec, model_name="team-loans-override",
                                  checks=[{"metric": "f1", "lower": 0.0,
                                           "severity": "error"}]))
    assert trained["model_name"] == "team-loans-override"
    scored = value(batch_inference_flow(spec=spec, model_name="team-loans-override",
                                        output_table="loans_override_scores"))
    assert scored["output_table"] == "loans_override_scores"
    assert team["warehouse"].table_exists("loans_override_scores")


def test_data_quality_reads_the_table_and_contract_from_the_spec(team: dict[str, Any]) -> None:
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.contracts.inference import infer_contract_yaml

    data = DATASETS["loans"]()
    team["warehouse"].write(data.frame, "loans_rows", mode="replace")
    without_contract = save_spec(data)
    text = failure_text(data_quality_flow, spec=without_contract)
    assert "contract=" in text
    assert_no_demo_name(text)

    DataContract(schema_yaml=infer_contract_yaml(data.frame, bounds=False)).save(
        "loans-contract", overwrite=True)
    spec = save_spec(data, contract="loans-contract")
    summary = value(data_quality_flow(spec=spec))
    assert summary["rows_read"] == summary["rows_valid"] == len(data.frame)
