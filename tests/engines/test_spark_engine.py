"""The ``SparkEngine`` block: master URLs, conf, and secrets kept out of sight."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import ValidationError

from knot_prefect.blocks.spark_engine import SparkEngine


def test_master_urls_are_checked_and_tokens_refused_in_the_url() -> None:
    for master in ("local[2]", "spark://h:7077", "sc://h:15002", "yarn", "k8s://https://k"):
        assert SparkEngine(master=master).master == master
    with pytest.raises(ValidationError, match="master must be local"):
        SparkEngine(master="h:7077")
    with pytest.raises(ValidationError, match="secret_conf"):
        SparkEngine(master="sc://h:15002/;token=abc")


def test_secret_conf_reaches_the_builder_but_no_repr_or_settings() -> None:
    pytest.importorskip("pyspark")
    engine = SparkEngine(master="local[1]", conf={"spark.ui.enabled": "false"},
                         secret_conf={"spark.hadoop.fs.s3a.secret.key": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(engine)
    assert "s3cr3t-value" not in str(engine.settings())
    builder = engine.builder()
    assert builder._options["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t-value"
    assert builder._options["spark.master"] == "local[1]"
    assert engine.settings()["spark.pyspark.python"]  # local Python workers: this venv


def test_spark_connect_token_goes_into_the_remote_url() -> None:
    pytest.importorskip("pyspark")
    engine = SparkEngine(master="sc://connect:15002", secret_conf={"token": "t0k3n"})
    options = engine.builder()._options
    assert options["spark.remote"] == "sc://connect:15002/;token=t0k3n"
    assert "token" not in options and "t0k3n" not in repr(engine)
    assert "spark.pyspark.python" not in engine.settings()


def test_a_databricks_engine_names_what_its_job_lacks() -> None:
    from datetime import UTC, datetime

    from knot_prefect.errors import ConfigurationError
    from knot_prefect.flows.databricks_scoring import ScoringRequest, submit_payload

    now = datetime.now(UTC)
    request = ScoringRequest(
        warehouse="w", tracking="t", model_name="m", model_version=1, model_alias="a",
        entity_sql="rows", query="select * from rows", params=None, keys=["id"],
        output_table="out", partition_rows=None,
        lineage={"flow_run_id": None, "features_as_of": now, "scored_at": now})
    engine = SparkEngine(master="databricks")
    with pytest.raises(ConfigurationError, match="starts no session here"):
        engine.builder()
    with pytest.raises(ConfigurationError, match="needs databricks_python_file"):
        submit_payload(engine, request)
    engine.databricks_python_file = "dbfs:/knot/databricks_scoring.py"
    with pytest.raises(ConfigurationError, match="existing_cluster_id"):
        submit_payload(engine, request)
    engine.databricks_cluster = {"new_cluster": {"num_workers": 2}}
    payload = submit_payload(engine, request)
    (task,) = payload["tasks"]
    assert task["new_cluster"] == {"num_workers": 2}
    # A retried run must not get the earlier attempt's Databricks run back.
    assert payload["idempotency_token"] != submit_payload(engine, request)["idempotency_token"]
    assert len(payload["idempotency_token"]) <= 64  # the Jobs API's limit
    assert ScoringRequest.from_json(task["spark_python_task"]["parameters"][0]).keys == ["id"]
    if importlib.util.find_spec("prefect_databricks"):
        with pytest.raises(ConfigurationError, match="needs databricks_credentials"):
            engine.databricks_credentials_block()
