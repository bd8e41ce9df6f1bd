"""Spark scoring as a Databricks job, at prefect-databricks' client boundary.

No workspace is reachable: prefect-databricks' real HTTPS client talks to a local
recording endpoint (``databricks_endpoint.py``). The submitted run is played by running
the job's own entry point (``databricks_scoring.main``) on the suite's local Spark, so
the tests assert the payload knot submits, the scoring the job does, and what the flow
does with each terminal state. They do not prove that Databricks accepts the payload.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from knot_prefect.flows import batch_inference_flow
from tests.engines.conftest import CONTRACT, ROWS, TRACKING
from tests.engines.databricks_endpoint import DatabricksEndpoint, start_endpoint

pytestmark = pytest.mark.heavy

ENGINE, TOKEN = "engines-databricks-spark", "dapi-s3cr3t-token"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabricksEndpoint]:
    pytest.importorskip("prefect_databricks")
    from prefect_databricks import DatabricksCredentials

    from knot_prefect.blocks.spark_engine import SparkEngine
    from knot_prefect.flows.databricks_scoring import main

    for state in start_endpoint(tmp_path_factory.mktemp("databricks")):
        DatabricksCredentials(databricks_instance=state.instance, token=TOKEN,
                              client_kwargs={"verify": state.certificate}).save(
            "engines-databricks", overwrite=True)
        SparkEngine(master="databricks", databricks_credentials="engines-databricks",
                    databricks_cluster={"existing_cluster_id": "0101-knot"},
                    databricks_python_file="dbfs:/knot/databricks_scoring.py",
                    databricks_poll_seconds=0.5).save(ENGINE, overwrite=True)

        def job(payload: dict[str, Any]) -> str:
            """The cluster's side: the job's Python file run with its parameters."""
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                main(payload["tasks"][0]["spark_python_task"]["parameters"])
            return output.getvalue()

        state.job = job
        yield state


def score(model: str, table: str, **options: Any) -> Any:
    return batch_inference_flow(
        warehouse="engines-plain-lake", tracking=TRACKING, model_name=model,
        entity_sql="rows_to_score", key_columns=["customer_id"], output_table=table,
        feature_source="warehouse", **options)


def test_a_succeeded_run_publishes_what_the_job_staged(
    scoring_models: dict[str, str], plain_lake: Any, spark_session: Any,
    endpoint: DatabricksEndpoint,
) -> None:
    endpoint.reset()
    model = scoring_models["regressor"]
    expected = score(model, "dbx_in_process")
    summary = score(model, "dbx_on_databricks", spark=ENGINE)
    assert summary["rows_published"] == expected["rows_published"] == ROWS

    def published(table: str) -> pd.DataFrame:
        return plain_lake.read(f"select customer_id, prediction from {table} "
                               "order by customer_id")

    pd.testing.assert_frame_equal(published("dbx_on_databricks"), published("dbx_in_process"),
                                  check_exact=False, rtol=0, atol=1e-9)

    calls = [(method, path) for method, path, _, _ in endpoint.requests]
    assert calls[0] == ("POST", "/api/2.1/jobs/runs/submit")
    assert set(calls[1:-1]) == {("GET", "/api/2.1/jobs/runs/get")} and len(calls) >= 4
    assert calls[-1] == ("GET", "/api/2.1/jobs/runs/get-output")
    assert {auth for *_, auth in endpoint.requests} == {f"Bearer {TOKEN}"}
    payload = endpoint.requests[0][2]
    (task,) = payload["tasks"]
    assert task["existing_cluster_id"] == "0101-knot"
    assert task["libraries"] == [{"pypi": {"package": "knot-prefect[spark]"}}]
    assert task["spark_python_task"]["python_file"] == "dbfs:/knot/databricks_scoring.py"
    request = json.loads(task["spark_python_task"]["parameters"][0])
    assert request["warehouse"] == "engines-plain-lake" and request["tracking"] == TRACKING
    assert request["model_name"] == model and request["model_version"] >= 1
    assert request["keys"] == ["customer_id"]
    assert request["output_table"] == "dbx_on_databricks"
    assert payload["idempotency_token"].startswith(f"{request['lineage']['flow_run_id']}-")
    assert TOKEN not in json.dumps(payload)
    assert endpoint.requests[-1][2] == {"run_id": ["101"]}  # the task's run


def test_a_failed_run_publishes_nothing_and_says_why(
    scoring_models: dict[str, str], plain_lake: Any, endpoint: DatabricksEndpoint,
) -> None:
    endpoint.reset()
    endpoint.result_state = "FAILED"
    endpoint.state_message = "Cluster 0101-knot was terminated: driver unreachable."
    state = score(scoring_models["regressor"], "dbx_failed", spark=ENGINE,
                  return_state=True)
    assert state.is_failed()
    for part in ("run 100", "TERMINATED/FAILED", "driver unreachable",
                 f"https://{endpoint.instance}/#job/runs/100", "Nothing was published"):
        assert part in state.message
    assert TOKEN not in state.message
    assert not plain_lake.table_exists("dbx_failed")
    assert [path for _, path, _, _ in endpoint.requests][-1] == "/api/2.1/jobs/runs/get"


def test_a_contract_is_refused_before_any_request(
    scoring_models: dict[str, str], plain_lake: Any, endpoint: DatabricksEndpoint,
) -> None:
    from knot_prefect.blocks.contract import DataContract

    DataContract(schema_yaml=CONTRACT).save("engines-dbx-contract", overwrite=True)
    endpoint.reset()
    state = score(scoring_models["regressor"], "dbx_refused", spark=ENGINE,
                  contract="engines-dbx-contract", return_state=True)
    assert state.is_failed() and "Databricks job reads the model's inputs" in state.message
    assert endpoint.requests == [] and not plain_lake.table_exists("dbx_refused")
