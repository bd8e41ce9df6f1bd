"""The ``SparkEngine`` block: master URLs, conf, and secrets kept out of sight."""

from __future__ import annotations

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
