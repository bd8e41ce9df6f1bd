"""The same pipeline on S3 (moto) and on GCS (emulator): only the block documents change.

Each cloud gets ``blocks/aws.yaml`` or ``blocks/gcp.yaml`` applied with its environment;
then the same code seeds the Parquet lake, uploads the Feast repo, trains, and runs
``batch_inference_flow`` with the same document names. The predictions must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.states import State

from knot_prefect.documents import BlockDocumentError, apply_file

pytestmark = pytest.mark.heavy

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS, DAYS, SEED = 160, 10, 4
BAD_ROWS = 3
MODEL = "churn-cloud"
NAMES = {"warehouse": "churn-warehouse", "feature_store": "churn-features",
         "tracking": "churn-mlflow"}


def value(result: Any) -> Any:
    return result.result() if isinstance(result, State) else result


def run_pipeline(cloud: str, environ: dict[str, str], home: Path,
                 patch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Apply the cloud's documents, then run exactly the same code for either cloud."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.demo.data import DATASET_END, generate_churn_dataset
    from knot_prefect.demo.params import scoring_parameters, training_parameters
    from knot_prefect.demo.seed import seed_warehouse, with_bad_rows, write_feature_repo
    from knot_prefect.flows import batch_inference_flow, training_flow
    from knot_prefect.tasks import feast_apply

    for name in ("MLFLOW_S3_ENDPOINT_URL", "FEAST_S3_ENDPOINT_URL"):
        if name in environ:
            patch.setenv(name, environ[name])
        else:
            patch.delenv(name, raising=False)
    applied = apply_file(ROOT / "blocks" / f"{cloud}.yaml", environ=environ)

    lake = ParquetLake.load(NAMES["warehouse"])
    tables = generate_churn_dataset(customers=CUSTOMERS, days=DAYS, seed=SEED)
    tables["customers"] = with_bad_rows(tables["customers"])
    seed_warehouse(lake, tables)
    features = FeastFeatureStore.load(NAMES["feature_store"])
    repo = write_feature_repo(home / f"{cloud}-repo", tables)
    bucket: Any = features.s3_bucket or features.gcs_bucket
    bucket.upload_from_folder(str(repo), features.bucket_folder)
    feast_apply.fn(NAMES["feature_store"])

    trained = value(training_flow(**training_parameters(model_name=MODEL, **NAMES)))
    scored = value(batch_inference_flow(
        **scoring_parameters(model_name=MODEL, as_of=DATASET_END, **NAMES)))
    predictions = lake.read("select * from churn_predictions order by customer_id")
    client = ParquetLake.load(NAMES["warehouse"])  # a fresh load reads the bucket again
    return {"applied": applied, "lake": client.location, "trained": trained,
            "scored": scored, "predictions": predictions,
            "tables": set(client.list_tables())}


@pytest.fixture(scope="module")
def runs(aws_environ: dict[str, str], gcp_environ: dict[str, str],
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    home = tmp_path_factory.mktemp("knot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        return {
            "aws": run_pipeline("aws", aws_environ, home, patch),
            "gcp": run_pipeline("gcp", gcp_environ, home, patch),
        }


def s3_keys(environ: dict[str, str], prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=environ["AWS_ENDPOINT_URL"])
    listing = client.list_objects_v2(Bucket=environ["KNOT_S3_BUCKET"], Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def gcs_keys(environ: dict[str, str], prefix: str) -> list[str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]
    return [blob.name for blob in client.list_blobs(environ["KNOT_GCS_BUCKET"], prefix=prefix)]


def test_same_predictions_on_s3_and_gcs(runs: dict[str, dict[str, Any]]) -> None:
    aws, gcp = runs["aws"], runs["gcp"]
    assert aws["lake"].startswith("s3://") and gcp["lake"].startswith("gs://")
    for run in (aws, gcp):
        assert run["scored"]["rows_quarantined"] == BAD_ROWS
        assert run["scored"]["rows_published"] == CUSTOMERS - BAD_ROWS
        assert {"customers", "churn_predictions", "churn_scoring_quarantine"} <= run["tables"]
    left, right = aws["predictions"], gcp["predictions"]
    assert left["customer_id"].tolist() == right["customer_id"].tolist()
    assert np.allclose(left["probability"], right["probability"], rtol=0, atol=1e-9)
    assert left["probability"].nunique() > 10  # real scores, not a constant
    assert aws["trained"]["metrics"]["roc_auc"] == pytest.approx(
        gcp["trained"]["metrics"]["roc_auc"])
    # The two runs are distinct: each row names its own flow run.
    assert set(left["flow_run_id"]).isdisjoint(set(right["flow_run_id"]))


def test_lake_model_artifacts_and_feast_registry_live_on_the_buckets(
    runs: dict[str, dict[str, Any]], aws_environ: dict[str, str], gcp_environ: dict[str, str]
) -> None:
    for keys in (lambda p: s3_keys(aws_environ, p), lambda p: gcs_keys(gcp_environ, p)):
        assert "knot/lake/churn_predictions/_manifest.json" in keys("knot/lake/")
        artifacts = keys("knot/mlflow/")
        assert any(key.endswith("reference_profile.json") for key in artifacts), artifacts[:5]
        assert "knot/feast-registry/registry.pb" in keys("knot/feast-registry/")
        assert "knot/feast/churn_features.py" in keys("knot/feast/")


def test_model_versions_point_at_the_buckets(
    runs: dict[str, dict[str, Any]], aws_environ: dict[str, str], gcp_environ: dict[str, str]
) -> None:
    from mlflow import MlflowClient

    for environ, scheme in ((aws_environ, "s3://"), (gcp_environ, "gs://")):
        uri = environ["MLFLOW_TRACKING_URI"]
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        champion = client.get_model_version_by_alias(MODEL, "champion")
        run = client.get_run(str(champion.run_id))
        assert run.info.artifact_uri.startswith(scheme), run.info.artifact_uri
        download = client.get_model_version_download_uri(MODEL, champion.version)
        assert download.startswith(scheme), download


def test_a_missing_variable_is_named_and_nothing_is_applied() -> None:
    with pytest.raises(BlockDocumentError, match=r"KNOT_S3_BUCKET"):
        apply_file(ROOT / "blocks" / "aws.yaml", environ={"AWS_ACCESS_KEY_ID": "x"})
    with pytest.raises(BlockDocumentError, match=r"KNOT_GCS_BUCKET"):
        apply_file(ROOT / "blocks" / "gcp.yaml", environ={})


def test_secrets_are_not_in_the_saved_documents(runs: dict[str, dict[str, Any]],
                                                aws_environ: dict[str, str]) -> None:
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    # The last applied file is gcp.yaml; apply aws.yaml again to inspect its lake.
    apply_file(ROOT / "blocks" / "aws.yaml", environ={**aws_environ,
                                                      "AWS_SECRET_ACCESS_KEY": "s3cr3t-v4lue"})
    lake = ParquetLake.load(NAMES["warehouse"])
    assert lake.s3_bucket is not None
    assert "s3cr3t-v4lue" not in repr(lake)
    assert lake.s3_bucket.credentials.aws_secret_access_key.get_secret_value() == "s3cr3t-v4lue"
    pd.testing.assert_frame_equal(lake.read("select count(*) as n from churn_predictions"),
                                  pd.DataFrame({"n": [CUSTOMERS - BAD_ROWS]}),
                                  check_dtype=False)
