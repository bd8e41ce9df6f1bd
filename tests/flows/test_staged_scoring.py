"""``batch_inference_flow`` publishes through staged writes on every warehouse: the
streamed and key-range paths give the lake's rows on SQL warehouses, and a run that
fails part-way publishes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knot_prefect.blocks.warehouses.base import Warehouse
from knot_prefect.blocks.warehouses.staging import STAGE_PREFIX, SqlStagedWarehouse
from knot_prefect.flows import batch_inference_flow

ROWS = 300
MODEL = "staged-scorer"
TRACKING = "staged-mlflow"
# Ordered by x1: the prediction grows from batch to batch, so bounds below the largest
# one pass the first batches and fail a later one.
ROWS_SQL = "select customer_id, x1, x2 from rows_to_score order by x1"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A linear model of x1, x2 registered with alias champion in a SQLite MLflow store."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tasks.mlflow_registry import register_model
    from knot_prefect.tracking.runs import tracked_run

    folder = tmp_path_factory.mktemp("staged-mlflow")
    block = MLflowTracking(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                           artifact_location=(folder / "artifacts").as_uri(),
                           experiment_name="staged")
    block.save(TRACKING, overwrite=True)
    data = rows()
    features = data[["x1", "x2"]]
    estimator = LinearRegression().fit(features, data["x1"] + 0.5 * data["x2"])
    with tracked_run(block, run_name="staged"):
        info = mlflow.sklearn.log_model(
            estimator, name="model", pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
            signature=infer_signature(features, estimator.predict(features)))
    version = register_model.fn(info.model_uri, MODEL, block).version
    block.get_client().set_registered_model_alias(MODEL, "champion", str(version))
    return MODEL


def rows() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"customer_id": np.arange(1, ROWS + 1),
                         "x1": rng.normal(size=ROWS), "x2": rng.normal(size=ROWS)})


@pytest.fixture
def saved(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Warehouse]:
    """Save a warehouse of a kind holding the rows to score (document ``staged-KIND``)."""
    from knot_prefect import DuckDBWarehouse, SqlWarehouse
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    def save(kind: str) -> Warehouse:
        block: Warehouse
        if kind == "duckdb":
            block = DuckDBWarehouse(path=str(tmp_path / "scoring.duckdb"))
        elif kind == "postgres":
            block = SqlWarehouse(url=request.getfixturevalue("postgres_database")["url"])
        else:
            block = ParquetLake(path=str(tmp_path / "lake"), rows_per_file=100)
        block.write(rows(), "rows_to_score", mode="replace")
        block.save(f"staged-{kind}", overwrite=True)
        return block

    return save


def score(warehouse: Warehouse, table: str, **options: Any) -> Any:
    return batch_inference_flow(**{
        "warehouse": warehouse._block_document_name, "tracking": TRACKING,
        "model_name": MODEL, "entity_sql": ROWS_SQL, "key_columns": ["customer_id"],
        "output_table": table, "feature_source": "warehouse", "batch_rows": 64, **options})


def published(warehouse: Warehouse, table: str) -> pd.DataFrame:
    frame = warehouse.read_table(table, ["customer_id", "prediction"])
    return frame.sort_values("customer_id").reset_index(drop=True)


def stage_tables(warehouse: Warehouse) -> list[str]:
    assert isinstance(warehouse, SqlStagedWarehouse)
    with warehouse._session() as session:
        return [n for n in session.table_names(None) if n.startswith(STAGE_PREFIX)]


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_streamed_and_key_range_runs_give_the_lakes_rows_and_a_failed_run_publishes_nothing(
    kind: str, model: str, saved: Callable[[str], Warehouse],
) -> None:
    lake, warehouse = saved("lake"), saved(kind)
    score(lake, "scores", partition_rows=100)
    expected = published(lake, "scores")
    assert len(expected) == ROWS

    # In the flow process: key ranges (three of 100 rows) of a table given by name,
    # then batches of 64 rows of a query.
    summary = score(warehouse, "by_range", partition_rows=100, entity_sql="rows_to_score")
    assert summary["rows_published"] == ROWS
    pd.testing.assert_frame_equal(published(warehouse, "by_range"), expected)
    summary = score(warehouse, "streamed", stream=True)
    assert summary["rows_published"] == ROWS
    pd.testing.assert_frame_equal(published(warehouse, "streamed"), expected)
    assert stage_tables(warehouse) == []

    # The last batches break the bounds: the first ones were already scored and
    # staged, yet nothing is published (not even a new table) and no stage is left.
    bounds = [-100.0, float(expected["prediction"].quantile(0.9))]
    for table, options in (("failed_streamed", {"stream": True}),
                           ("failed_by_range", {"partition_rows": 100})):
        state = score(warehouse, table, prediction_bounds=bounds, return_state=True,
                      **options)
        assert state.is_failed() and "prediction-max" in state.message
        assert not warehouse.table_exists(table)
        assert stage_tables(warehouse) == []
