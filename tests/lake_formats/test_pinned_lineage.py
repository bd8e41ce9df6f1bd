"""Lineage pins data versions: every prediction row names the Delta version of each
table its run read, that version reads back the exact scoring input after the table
has changed, and a training run records the same versions in MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest

from knot_prefect import DeltaLake
from knot_prefect.flows import batch_inference_flow, training_flow
from knot_prefect.lineage.query import explain_prediction
from tests.flows.test_staged_scoring import MODEL, ROWS, ROWS_SQL, TRACKING, model, rows

__all__ = ["model"]  # the registered model fixture, shared with the staged-scoring tests


@pytest.fixture
def lake(tmp_path: Path) -> DeltaLake:
    """A saved Delta lake holding version 0 of the rows to score."""
    block = DeltaLake(path=str(tmp_path / "delta"))
    block.write(rows(), "rows_to_score", mode="replace")
    block.save("pinned-delta", overwrite=True)
    return block


def score(**options: Any) -> Any:
    return batch_inference_flow(**{
        "warehouse": "pinned-delta", "tracking": TRACKING, "model_name": MODEL,
        "entity_sql": ROWS_SQL, "key_columns": ["customer_id"], "output_table": "scores",
        "feature_source": "warehouse", "batch_rows": 128, **options})


def test_each_prediction_row_pins_the_version_it_read_and_that_version_reads_back(
    lake: DeltaLake, model: str
) -> None:
    lake.write(rows().assign(x1=0.0), "rows_to_score", mode="replace")  # version 1
    score(partition_rows=100)  # key ranges, each read by its own reader
    scores = lake.read_table("scores")
    assert len(scores) == ROWS
    assert set(scores["source_versions"]) == {'{"rows_to_score": 1}'}

    # The table moves on; the pinned version still reads the exact scoring input.
    lake.write(rows().assign(x2=9.0), "rows_to_score", mode="replace")
    pinned = json.loads(scores["source_versions"][0])
    read, versions = lake.read_versioned(ROWS_SQL, versions=pinned)
    assert versions == pinned
    pd.testing.assert_frame_equal(read.to_pandas(), rows().assign(x1=0.0)
                                  .sort_values("x1", kind="stable").reset_index(drop=True))

    # `knot lineage` shows the versions of the row it explains.
    answer = explain_prediction(lake, "scores", "7")
    assert answer.lineage["source_versions"] == '{"rows_to_score": 1}'

    # A streamed run of the new version records it.
    score(stream=True, output_table="streamed")
    assert set(lake.read_table("streamed")["source_versions"]) == {'{"rows_to_score": 2}'}


@pytest.mark.parametrize("options", [{"partition_rows": 100}, {"stream": True}],
                         ids=["key-ranges", "streamed"])
def test_a_predictions_table_without_source_versions_gains_the_column(
    lake: DeltaLake, model: str, options: dict[str, Any]
) -> None:
    # A predictions table as an earlier release wrote it (or `knot lake migrate` made it).
    score(**options)
    older = lake.read_table("scores").drop(columns="source_versions").head(10)
    lake.write(older, "scores", mode="replace")

    score(**options)
    scores = lake.read_table("scores")
    assert len(scores) == ROWS and scores["customer_id"].is_unique
    assert set(scores["source_versions"]) == {'{"rows_to_score": 0}'}


def test_a_pinned_lake_reads_the_pinned_version_after_commits_and_across_processes(
    lake: DeltaLake,
) -> None:
    pinned, versions = lake.pin_reads("SELECT * FROM rows_to_score WHERE x1 > :x", {"x": 0})
    lake.write(rows().head(5), "rows_to_score", mode="replace")
    shipped = cloudpickle.loads(cloudpickle.dumps(pinned))  # as to a Dask worker
    assert versions == {"rows_to_score": 0}
    assert len(shipped.read("SELECT * FROM rows_to_score")) == ROWS
    assert shipped.read_table_arrow("rows_to_score").num_rows == ROWS
    assert sum(len(b) for b in shipped.read_batches("SELECT * FROM rows_to_score", None,
                                                    100)) == ROWS
    assert len(lake.read("SELECT * FROM rows_to_score")) == 5


@pytest.mark.heavy
def test_training_records_the_versions_it_read_in_mlflow(lake: DeltaLake, model: str) -> None:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    lake.write(rows().assign(y=lambda f: f["x1"] * 2), "rows_to_score", mode="replace")
    summary = training_flow(
        entity_sql="rows_to_score", target="y", key_columns=["customer_id"],
        task="regression", model_name="pinned-trained", warehouse="pinned-delta",
        tracking=TRACKING, checks=[])
    tracking: Any = MLflowTracking.load(TRACKING)
    version = tracking.get_client().get_model_version("pinned-trained",
                                                      str(summary["model_version"]))
    assert version.tags["knot.source_versions"] == '{"rows_to_score": 1}'
