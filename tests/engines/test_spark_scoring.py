"""``batch_inference_flow`` on Spark (``local[2]``): the rows the flow process scores,
to the same predictions, staged by the Spark tasks and published in one commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from knot_prefect.flows import batch_inference_flow
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.engines.conftest import ENTITIES, ROWS, SPARK, TRACKING, rows

pytestmark = pytest.mark.heavy

QUERY = "select customer_id, x1, x2 from rows_to_score where x1 > -100"
VARYING = ["flow_run_id", "scored_at", "features_as_of"]


def score(model: str, table: str, **options: Any) -> Any:
    return batch_inference_flow(**{
        "warehouse": "engines-lake", "tracking": TRACKING, "model_name": model,
        "entity_sql": "rows_to_score", "key_columns": ["customer_id"],
        "output_table": table, "feature_source": "warehouse", "batch_rows": 64,
        **options})


def published(lake: Any, table: str) -> pd.DataFrame:
    return lake.read(f"select * from {table} order by customer_id").reset_index(drop=True)


def data_files(lake: Any, table: str) -> list[str]:
    return sorted(p.name for p in (Path(lake.location) / table / "data").glob("*.parquet"))


@pytest.fixture(scope="module")
def scored(scoring_models: dict[str, str], lake: Any, spark_session: Any) -> dict[str, Any]:
    """Each model scored in the flow process and on Spark: the tables, by kind."""
    summaries = {}
    for kind, entity_sql in (
        ("regressor", "rows_to_score"),  # Spark reads the lake table's files itself
        ("classifier", QUERY),           # Spark tasks read key ranges through the lake
    ):
        model = scoring_models[kind]
        summaries[kind] = (
            score(model, f"{kind}_in_process", entity_sql=entity_sql),
            score(model, f"{kind}_on_spark", entity_sql=entity_sql, spark=SPARK,
                  partition_rows=100),
        )
    return summaries


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_spark_scores_the_same_rows_to_the_same_predictions_as_the_flow_process(
    kind: str, scored: dict[str, Any], lake: Any,
) -> None:
    expected, summary = scored[kind]
    assert summary["rows_read"] == summary["rows_published"] == expected["rows_published"]
    assert summary["rows_published"] == ROWS
    reference = published(lake, f"{kind}_in_process")
    result = published(lake, f"{kind}_on_spark")
    assert list(result.columns) == list(reference.columns)
    assert set(LINEAGE_COLUMNS) <= set(result.columns)
    prediction_columns = [c for c in reference.columns
                          if c.startswith(("prediction", "probability"))]
    assert prediction_columns == (["prediction"] if kind == "regressor"
                                  else ["prediction", "probability"])
    pd.testing.assert_frame_equal(result[["customer_id", *prediction_columns]],
                                  reference[["customer_id", *prediction_columns]],
                                  check_exact=False, rtol=0, atol=1e-9)
    lineage = [c for c in LINEAGE_COLUMNS if c not in VARYING]
    pd.testing.assert_frame_equal(result[lineage], reference[lineage])
    assert result["flow_run_id"].nunique() == 1
    # Published by one commit of the files the Spark tasks staged (nothing rewritten).
    assert all("-stage-" in name for name in data_files(lake, f"{kind}_on_spark"))


def test_one_process_dask_and_spark_score_the_same_rows_to_the_same_predictions(
    scored: dict[str, Any], lake: Any, scoring_models: dict[str, str], dask_scheduler: str,
) -> None:
    summary = score(scoring_models["regressor"], "regressor_on_dask",
                    dask_address=dask_scheduler, partition_rows=100)
    assert summary["rows_published"] == ROWS
    columns = ["customer_id", "prediction"]
    reference = published(lake, "regressor_in_process")
    for engine in ("dask", "spark"):
        result = published(lake, f"regressor_on_{engine}")
        pd.testing.assert_frame_equal(result[columns], reference[columns],
                                      check_exact=False, rtol=0, atol=1e-9)
        lineage = [c for c in LINEAGE_COLUMNS if c not in VARYING]
        pd.testing.assert_frame_equal(result[lineage], reference[lineage])


def test_a_failed_spark_run_publishes_nothing_and_leaves_no_staged_files(
    scoring_models: dict[str, str], lake: Any, scored: dict[str, Any],
) -> None:
    model, table = scoring_models["regressor"], "regressor_on_spark"
    before, files_before = published(lake, table), data_files(lake, table)

    # Every Spark task stages its rows, then the bounds check fails in the flow.
    state = score(model, table, spark=SPARK, prediction_bounds=[-0.1, 0.1],
                  return_state=True)
    assert state.is_failed() and f"{table}-prediction-m" in state.message
    pd.testing.assert_frame_equal(published(lake, table), before)
    assert data_files(lake, table) == files_before

    # One Spark task fails (a null key) after the others staged their parts.
    lake.write(pd.DataFrame({"customer_id": [None], "x1": [0.0], "x2": [0.0]}).astype(
        {"customer_id": "Int64"}), "with_null_key", mode="replace")
    state = score(model, table, spark=SPARK, return_state=True, entity_sql=(
        "select * from rows_to_score union all select * from with_null_key"))
    assert state.is_failed() and "customer_id" in state.message
    pd.testing.assert_frame_equal(published(lake, table), before)
    assert data_files(lake, table) == files_before


def test_spark_spreads_a_one_file_table_over_every_task_with_each_key_in_one_part(
    scoring_models: dict[str, str], lake: Any,
) -> None:
    import pyarrow.parquet as pq

    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    # One Parquet file of one row group: Spark alone would read it in one task.
    ParquetLake(path=lake.path, rows_per_file=ROWS).write(rows(), "one_file", mode="replace")
    assert len(data_files(lake, "one_file")) == 1
    summary = score(scoring_models["regressor"], "one_file_on_spark", spark=SPARK,
                    entity_sql="one_file")
    assert summary["rows_published"] == ROWS
    # Both task slots staged a share (the commit published their files as they are,
    # named by part: ...-stage-PART-FILE.parquet).
    folder = Path(lake.location) / "one_file_on_spark" / "data"
    shares: dict[str, int] = {}
    for name in data_files(lake, "one_file_on_spark"):
        part = name.split("-stage-")[1].split("-")[0]
        shares[part] = shares.get(part, 0) + pq.read_metadata(folder / name).num_rows
    assert len(shares) == 2
    assert sum(shares.values()) == ROWS and min(shares.values()) > ROWS // 4


def test_a_key_repeated_in_two_files_is_refused_on_spark_and_nothing_is_published(
    scoring_models: dict[str, str], lake: Any,
) -> None:
    # Each key lands in one Spark task, whose own check finds the repeat.
    lake.write(rows().head(100), "repeated", mode="replace")
    lake.write(rows().head(1), "repeated", mode="append")
    state = score(scoring_models["regressor"], "repeated_on_spark", spark=SPARK,
                  entity_sql="repeated", return_state=True)
    assert state.is_failed() and "repeat" in state.message and "{'customer_id': 1}" in (
        state.message)
    assert not lake.table_exists("repeated_on_spark")
    assert data_files(lake, "repeated_on_spark") == []


def test_spark_scoring_refuses_what_it_cannot_do(
    scoring_models: dict[str, str], lake: Any,
) -> None:
    from knot_prefect import DuckDBWarehouse

    DuckDBWarehouse(path=str(Path(lake.location) / "one.duckdb")).save(
        "engines-duckdb", overwrite=True)
    model = scoring_models["regressor"]
    for options, message in (
        ({"dask_address": "local"}, "not both"),
        ({"warehouse": "engines-duckdb", "entity_sql": "select 1 as customer_id, "
          "0.0 as x1, 0.0 as x2"}, "held by one process"),
    ):
        state = score(model, "refused", spark=SPARK, return_state=True, **options)
        assert state.is_failed() and message in state.message
    assert not lake.table_exists("refused")


def test_spark_scores_feast_features_as_of_the_run_like_the_flow_process(
    scoring_models: dict[str, str], lake: Any, feast_features: dict[str, Any],
) -> None:
    lake.write(rows()[["customer_id"]].head(ENTITIES), "entities", mode="replace")
    options = {"entity_sql": "entities", **feast_features}
    model = scoring_models["regressor"]
    expected = score(model, "feast_in_process", **options)
    summary = score(model, "feast_on_spark", spark=SPARK, **options)

    for run in (expected, summary):
        assert (run["rows_read"], run["rows_quarantined"], run["rows_published"]) == (
            ENTITIES, 1, ENTITIES - 1)
    reference = published(lake, "feast_in_process")
    result = published(lake, "feast_on_spark")
    assert list(result.columns) == list(reference.columns)
    pd.testing.assert_frame_equal(result[["customer_id", "prediction"]],
                                  reference[["customer_id", "prediction"]],
                                  check_exact=False, rtol=0, atol=1e-9)
    lineage = [c for c in reference.columns
               if c in LINEAGE_COLUMNS and c not in ("flow_run_id", "scored_at")]
    assert {"features_as_of", "feature_views", "contract_version"} <= set(lineage)
    pd.testing.assert_frame_equal(result[lineage], reference[lineage])
    assert result["feature_views"].str.contains("inputs").all()
    # Point in time: the values of T0 (the model fits x1 + 0.5 x2), not the later ones.
    inputs = rows().head(ENTITIES - 1)
    np.testing.assert_allclose(result["prediction"], inputs["x1"] + 0.5 * inputs["x2"],
                               atol=1e-6)
    assert all("-stage-" in name for name in data_files(lake, "feast_on_spark"))
    assert len(lake.read("select * from feast_on_spark_quarantine")) == 1


def test_class_probabilities_from_spark_keep_their_rows_without_python_lists() -> None:
    import pyarrow as pa

    from knot_prefect.flows.spark_scoring import _probability_matrix

    rows = [[0.1, 0.9], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]]
    column = pa.array(rows, type=pa.list_(pa.float64()))
    # A slice starts at an offset into the flat values, as a batch of a larger column can.
    for part, expected in ((column, rows), (column.slice(1, 2), rows[1:3])):
        matrix = _probability_matrix(part)
        assert matrix.shape == (len(expected), 2)
        np.testing.assert_array_equal(matrix, np.asarray(expected))
    ragged = pa.array([[0.1, 0.9], [1.0]], type=pa.list_(pa.float64()))
    with pytest.raises(ValueError):
        _probability_matrix(ragged)
