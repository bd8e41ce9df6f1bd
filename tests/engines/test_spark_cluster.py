"""``batch_inference_flow`` on a standalone Spark cluster (master + worker started here):
executors in their own JVM and Python workers score to the flow process's predictions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from knot_prefect.flows import batch_inference_flow
from tests.conftest import _service
from tests.engines.conftest import ENTITIES, ROWS, TRACKING, local_engine, rows
from tests.engines.spark_cluster import start_spark_standalone

pytestmark = pytest.mark.heavy

CLUSTER = "engines-spark-cluster"


@pytest.fixture(scope="module")
def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One session on a standalone cluster; the suite's local session is put back after."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from knot_prefect.blocks.spark_engine import SparkEngine

    local = SparkSession.getActiveSession()
    if local is not None:  # one SparkContext per process: the local one steps aside
        local.stop()
    for master in _service(start_spark_standalone):
        engine = SparkEngine(master=master, app_name="knot-tests-cluster", conf={
            "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1", "spark.executor.memory": "1g",
            "spark.cores.max": "2", "spark.sql.shuffle.partitions": "2",
            # Executors run Python in this venv (on a real cluster: the cluster's own).
            "spark.pyspark.python": sys.executable})
        engine.save(CLUSTER, overwrite=True)
        session = engine.start()
        try:
            yield session
        finally:
            session.stop()
            if local is not None:
                local_engine().start()


def test_a_standalone_cluster_scores_to_the_flow_process_predictions(
    scoring_models: dict[str, str], plain_lake: Any, cluster_session: Any,
) -> None:
    assert cluster_session.sparkContext.master.startswith("spark://127.0.0.1:")
    options = {"warehouse": "engines-plain-lake", "tracking": TRACKING,
               "model_name": scoring_models["classifier"], "key_columns": ["customer_id"],
               "feature_source": "warehouse", "entity_sql": "rows_to_score"}
    expected = batch_inference_flow(output_table="in_process", **options)
    summary = batch_inference_flow(output_table="on_cluster", spark=CLUSTER, **options)
    assert summary["rows_published"] == expected["rows_published"] == ROWS

    def published(table: str) -> pd.DataFrame:
        return plain_lake.read(
            f"select customer_id, prediction, probability from {table} order by customer_id")

    pd.testing.assert_frame_equal(published("on_cluster"), published("in_process"),
                                  check_exact=False, rtol=0, atol=1e-9)
    # The rows were scored by an executor of the worker (besides the driver).
    assert cluster_session.sparkContext._jsc.sc().getExecutorMemoryStatus().size() >= 2


def test_a_standalone_cluster_scores_feast_features_to_the_flow_process_predictions(
    scoring_models: dict[str, str], plain_lake: Any, cluster_session: Any,
    feast_features: dict[str, Any],
) -> None:
    # The rows prepared in the flow process (contract, features as of the run) reach
    # the worker's executors as Arrow.
    plain_lake.write(rows()[["customer_id"]].head(ENTITIES), "entities", mode="replace")
    options = {"warehouse": "engines-plain-lake", "tracking": TRACKING,
               "model_name": scoring_models["regressor"], "key_columns": ["customer_id"],
               "entity_sql": "entities", **feast_features}
    expected = batch_inference_flow(output_table="feast_in_process", **options)
    summary = batch_inference_flow(output_table="feast_on_cluster", spark=CLUSTER, **options)
    for run in (expected, summary):
        assert (run["rows_quarantined"], run["rows_published"]) == (1, ENTITIES - 1)

    def published(table: str) -> pd.DataFrame:
        return plain_lake.read(f"select customer_id, prediction, features_as_of "
                               f"from {table} order by customer_id")

    pd.testing.assert_frame_equal(published("feast_on_cluster"), published("feast_in_process"),
                                  check_exact=False, rtol=0, atol=1e-9)
