"""One local Spark (``local[2]``) for every Spark test, and a small scoring world."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROWS = 240
TRACKING = "engines-mlflow"
SPARK = "engines-spark"
REGRESSOR, CLASSIFIER = "spark-regressor", "spark-classifier"


def local_engine() -> Any:
    """The ``local[2]`` engine of the suite's session (no UI)."""
    from knot_prefect.blocks.spark_engine import SparkEngine

    return SparkEngine(master="local[2]", app_name="knot-tests",
                       conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"})


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """A ``local[2]`` SparkSession (no UI) that flows given ``spark=`` reuse."""
    pytest.importorskip("pyspark")
    session = local_engine().start()
    yield session
    session.stop()


def rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"customer_id": np.arange(1, ROWS + 1),
                         "x1": rng.normal(size=ROWS), "x2": rng.normal(size=ROWS)})


@pytest.fixture(scope="module")
def scoring_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A regressor and a binary classifier (probabilities) of x1, x2, alias champion."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tasks.mlflow_registry import register_model
    from knot_prefect.tracking.runs import tracked_run

    folder = tmp_path_factory.mktemp("engines-mlflow")
    block = MLflowTracking(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                           artifact_location=(folder / "artifacts").as_uri(),
                           experiment_name="engines")
    block.save(TRACKING, overwrite=True)
    data = rows()
    features = data[["x1", "x2"]]
    regressor = LinearRegression().fit(features, data["x1"] + 0.5 * data["x2"])
    classifier = LogisticRegression().fit(features, (data["x1"] > data["x2"]).astype(int))
    for name, estimator, method in ((REGRESSOR, regressor, "predict"),
                                    (CLASSIFIER, classifier, "predict_proba")):
        with tracked_run(block, run_name=name):
            info = mlflow.sklearn.log_model(
                estimator, name="model", pip_requirements=["scikit-learn"],
                serialization_format="cloudpickle", pyfunc_predict_fn=method,
                signature=infer_signature(features, getattr(estimator, method)(features)))
        version = register_model.fn(info.model_uri, name, block).version
        block.get_client().set_registered_model_alias(name, "champion", str(version))
    return {"regressor": REGRESSOR, "classifier": CLASSIFIER}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, spark_session: Any) -> Any:
    """A ParquetLake (document ``engines-lake``) holding the rows to score."""
    from knot_prefect.blocks.spark_engine import SparkEngine
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    folder: Path = tmp_path_factory.mktemp("engines-lake")
    block = ParquetLake(path=str(folder), rows_per_file=100)
    block.write(rows(), "rows_to_score", mode="replace")
    block.save("engines-lake", overwrite=True)
    SparkEngine(master="local[2]").save(SPARK, overwrite=True)
    return block


@pytest.fixture(scope="module")
def plain_lake(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ParquetLake (document ``engines-plain-lake``) holding the rows; no Spark started."""
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    block = ParquetLake(path=str(tmp_path_factory.mktemp("plain-lake")), rows_per_file=100)
    block.write(rows(), "rows_to_score", mode="replace")
    block.save("engines-plain-lake", overwrite=True)
    return block


FEAST = "engines-features"
ENTITIES = 40
T0 = datetime(2026, 1, 1, tzinfo=UTC)
INPUTS_VIEW = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
inputs = FeatureView(
    name="inputs", entities=[customer], ttl=timedelta(days=30),
    schema=[Field(name="x1", dtype=Float64), Field(name="x2", dtype=Float64)],
    source=FileSource(name="inputs", path="data/inputs.parquet",
                      timestamp_field="event_timestamp"),
)
"""
# The last of the entities breaks the contract: quarantined (1 of 40, under 5%).
CONTRACT = f"""\
schema_type: dataframe
columns:
  customer_id:
    dtype: int64
    checks:
      less_than_or_equal_to: {ENTITIES - 1}
"""


@pytest.fixture(scope="module")
def feast_features(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A local Feast repo (file offline store) whose view ``inputs`` holds x1, x2 at T0
    and other values two days later, and a contract on the keys: the flow's options
    reading the values of T0 for the first ``ENTITIES`` customers."""
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.features.local_repo import write_local_feature_store_yaml
    from knot_prefect.tasks import feast_apply

    path = tmp_path_factory.mktemp("engines-feast")
    write_local_feature_store_yaml(path, "engines")
    (path / "definitions.py").write_text(INPUTS_VIEW)
    data = rows()
    later = data.assign(x1=data["x1"] + 100, x2=data["x2"] - 100)
    pd.concat([data.assign(event_timestamp=T0),
               later.assign(event_timestamp=T0 + timedelta(days=2))]).to_parquet(
        path / "data" / "inputs.parquet")
    FeastFeatureStore(repo_path=str(path)).save(FEAST, overwrite=True)
    feast_apply.fn(FEAST)
    DataContract(schema_yaml=CONTRACT, version_label="keys").save(
        "engines-contract", overwrite=True)
    return {"feature_source": "historical", "features": ["inputs:x1", "inputs:x2"],
            "feature_store": FEAST, "as_of": T0 + timedelta(days=1),
            "contract": "engines-contract"}
