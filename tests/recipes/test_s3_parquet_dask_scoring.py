"""s3-parquet-dask-scoring: the recipe's blocks on moto's S3, scoring on a real Dask
scheduler with two workers, streamed from and upserted to a Delta lake on S3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.documents import apply_file
from knot_prefect.lineage.columns import LINEAGE_COLUMNS
from tests.recipes.conftest import RECIPES, load_recipe

pytestmark = pytest.mark.heavy

RECIPE = RECIPES / "s3-parquet-dask-scoring"
ROWS = 3_000


def test_generate_train_and_score_on_dask_from_and_to_s3(
    moto_s3: str, dask_scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from knot_prefect import DeltaLake

    modules = load_recipe("s3-parquet-dask-scoring")
    bucket = f"knot-recipe-{uuid.uuid4().hex[:8]}"  # not created: the generator does it
    monkeypatch.setenv("KNOT_HOME", str(tmp_path / ".knot"))
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_s3)
    applied = apply_file(RECIPE / "blocks.yaml", environ={
        "SCORING_BUCKET": bucket, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": moto_s3,
    })
    assert {a.name for a in applied} == {"scoring-lake", "scoring-mlflow"}

    written = modules["generate_data"].generate(rows=ROWS, seed=3)
    assert written["customers"] == ROWS
    pipeline = modules["pipeline"]
    version = pipeline.train_model(model_name="recipe-scorer")
    assert version == 1

    summaries: list[dict[str, Any]] = [
        pipeline.score_customers(dask_address=dask_scheduler, model_name="recipe-scorer",
                                 batch_rows=700)
        for _ in range(2)
    ]
    assert [s["rows_scored"] for s in summaries] == [ROWS, ROWS]
    lake = DeltaLake.load("scoring-lake")
    assert isinstance(lake, DeltaLake)
    assert lake.location.startswith(f"s3://{bucket}/")
    # Two scoring runs: the table's first commit, then ONE MERGE of every batch.
    assert lake.table_version("churn_scores") == 1
    customers_version = lake.table_version("customers")
    scores = lake.read("select * from churn_scores")
    assert len(scores) == ROWS and scores["customer_id"].is_unique  # upserted, not appended
    assert scores["probability"].between(0, 1).all()
    # No contract in this recipe, so contract_version is the one empty lineage column.
    lineage = [c for c in LINEAGE_COLUMNS if c != "contract_version"]
    assert scores[lineage].notna().all().all()
    assert scores["contract_version"].isna().all()
    assert scores["flow_run_id"].nunique() == 1  # the second run overwrote every key
    # Each row names the Delta version of customers it was scored from.
    assert set(scores["source_versions"]) == {json.dumps({"customers": customers_version})}
    logs = boto3.client("s3", endpoint_url=moto_s3).list_objects_v2(
        Bucket=bucket, Prefix="scoring/lake/churn_scores/_delta_log/")
    assert any(item["Key"].endswith(".json") for item in logs.get("Contents", []))
    objects = boto3.client("s3", endpoint_url=moto_s3).list_objects_v2(
        Bucket=bucket, Prefix="scoring/mlflow/")
    assert any(item["Key"].endswith("MLmodel") for item in objects.get("Contents", []))
