"""bigquery-vertex-gpu: BigQuery has no emulator here, so this tests at the official
clients' boundary: the block documents validate into knot's and prefect-gcp's blocks,
Feast builds its BigQuery offline store configuration, and prefect-gcp's Vertex AI
worker renders the GPU custom job from the recipe's ComputeProfile."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml

from knot_prefect import ComputeProfile, FeastFeatureStore, MLflowTracking
from knot_prefect.deploy import render_job_configuration
from knot_prefect.documents import validate_file
from knot_prefect.errors import BlockDocumentError
from tests.recipes.conftest import RECIPES

# prefect-gcp resolves application default credentials when its blocks are built.
pytestmark = pytest.mark.usefixtures("google_adc")

RECIPE = RECIPES / "bigquery-vertex-gpu"
ENVIRON = {
    "GCP_PROJECT": "knot-tests", "BQ_DATASET": "ml", "BQ_LOCATION": "EU",
    "GCS_BUCKET": "knot-ml-bucket", "MLFLOW_TRACKING_URI": "https://mlflow.example.com",
    "IMAGE": "europe-docker.pkg.dev/knot-tests/ml/churn-vertex:v1",
}


def documents(environ: dict[str, str] = ENVIRON) -> dict[str, Any]:
    return {spec.name: block for spec, block in validate_file(RECIPE / "blocks.yaml", environ)}


def test_block_documents_validate_into_the_right_blocks() -> None:
    from prefect_gcp import GcpCredentials

    from knot_prefect.blocks.warehouses.bigquery import BigQueryWarehouse

    blocks = documents()
    warehouse = blocks["bq-warehouse"]
    assert isinstance(warehouse, BigQueryWarehouse)
    assert (warehouse.project, warehouse.dataset, warehouse.location) == ("knot-tests", "ml", "EU")
    assert isinstance(warehouse.gcp_credentials, GcpCredentials)
    assert warehouse.gcp_credentials.service_account_info is None  # no key in a document
    assert isinstance(blocks["bq-features"], FeastFeatureStore)
    assert isinstance(blocks["bq-mlflow"], MLflowTracking)
    assert blocks["bq-mlflow"].tracking_uri == ENVIRON["MLFLOW_TRACKING_URI"]
    profile = blocks["vertex-l4"]
    assert isinstance(profile, ComputeProfile)
    assert (profile.gpu_count, profile.gpu_kind, profile.image) == (1, "nvidia-l4",
                                                                    ENVIRON["IMAGE"])


def test_a_missing_setting_names_the_variable() -> None:
    environ = {k: v for k, v in ENVIRON.items() if k != "GCP_PROJECT"}
    with pytest.raises(BlockDocumentError, match=r"\$\{GCP_PROJECT\}"):
        documents(environ)


def test_feast_repo_configures_the_bigquery_offline_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    config = FeastFeatureStore(repo_path=str(RECIPE / "feature_repo")).repo_config()
    assert config.offline_store.type == "bigquery"
    assert (config.offline_store.project_id, config.offline_store.dataset) == ("knot-tests", "ml")
    assert config.offline_store.location == "EU"
    assert str(config.registry.path) == "gs://knot-ml-bucket/feast/registry.pb"


def test_vertex_job_is_the_profile_rendered_by_the_real_worker() -> None:
    from prefect.client.schemas.objects import FlowRun

    profile = documents()["vertex-l4"]
    deployment = yaml.safe_load((RECIPE / "prefect.yaml").read_text())["deployments"][0]
    written = dict(deployment["work_pool"]["job_variables"])
    assert written.pop("image") == "{{ build-image.image }}"  # the image built on deploy
    # Where and as whom the job runs are deployment settings, not profile fields.
    assert written["service_account_name"] == "{{ $VERTEX_SERVICE_ACCOUNT }}"
    region = {"region": written["region"], "service_account_name": "runner@knot.iam"}
    rendered = profile.job_variables("vertex-ai", region)
    assert {**written, **region, "image": rendered["image"]} == rendered

    run = FlowRun(flow_id=uuid.uuid4(), deployment_id=uuid.uuid4(), name="knot-recipe")
    job = render_job_configuration("vertex-ai", profile, job_variables=region, flow_run=run)
    assert job.region == "europe-west4"
    (pool,) = job.job_spec["worker_pool_specs"]
    assert pool["machine_spec"] == {
        "machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4", "accelerator_count": 1,
    }
    assert pool["replica_count"] == 1
    container = pool["container_spec"]
    assert container["image_uri"] == ENVIRON["IMAGE"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["KNOT_HOME"] == "/tmp/knot"
    assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
