"""A team's table in PostgreSQL: a mixed-case schema-qualified table, through the spec,
from training to ``knot serve``."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.states import State

from knot_prefect.blocks.model_spec import ModelSpec
from knot_prefect.blocks.warehouses.sql import SqlWarehouse
from knot_prefect.flows import batch_inference_flow, monitoring_flow, training_flow
from tests.templates.datasets import loans
from tests.templates.serving import assert_serves_like_batch, served_in_process
from tests.templates.test_any_table import assert_prediction_shape

pytestmark = pytest.mark.heavy


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


def test_spec_on_a_mixed_case_schema_qualified_postgres_table(
    team: dict[str, Any], postgres_database: dict[str, str]
) -> None:
    data = loans(rows=800)
    warehouse = SqlWarehouse(url=postgres_database["url"])
    warehouse.execute('create schema "Lending"')
    warehouse.write(data.frame, "Lending.LoanBook")
    warehouse.save("team-postgres", overwrite=True)
    ModelSpec(
        source="Lending.LoanBook", target="defaulted", key_columns=["loan_ref"],
        timestamp_column="opened_at", model_name="team-loans-postgres",
        output_table="Lending.LoanScores", warehouse="team-postgres", tracking="team-mlflow",
    ).save("loans-postgres", overwrite=True)

    trained = value(training_flow(spec="loans-postgres"))
    assert trained["task"] == "binary" and trained["promotion"]["decision"] == "promoted"
    scored = value(batch_inference_flow(spec="loans-postgres"))
    assert scored["rows_published"] == len(data.frame)
    # Re-scoring upserts by key into the same mixed-case table.
    value(batch_inference_flow(spec="loans-postgres"))
    table = warehouse.read('select * from "Lending"."LoanScores" order by loan_ref')
    assert len(table) == len(data.frame) and table["loan_ref"].is_unique
    assert_prediction_shape(table, data)
    drift = value(monitoring_flow(spec="loans-postgres"))
    assert {"income", "amount", "probability"} <= set(drift)

    # Served from the latest row per key of "Lending"."LoanBook".
    with served_in_process("loans-postgres") as url:
        assert_serves_like_batch(url, data, table)
