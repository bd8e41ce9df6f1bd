"""What can be checked without Google Cloud: the block documents, the Feast repo's
configuration and the Vertex AI job the worker would submit.

BigQuery and Vertex AI have no emulator, so nothing here runs a query or a job; run
`python pipeline.py` against your project for that.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
ENVIRON = {
    "GCP_PROJECT": "my-project", "BQ_DATASET": "ml", "BQ_LOCATION": "EU",
    "GCS_BUCKET": "my-ml-bucket", "MLFLOW_TRACKING_URI": "https://mlflow.example.com",
    "IMAGE": "europe-docker.pkg.dev/my-project/ml/churn-vertex:v1",
}


@pytest.fixture(autouse=True)
def google_adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Application default credentials that load offline: prefect-gcp resolves them
    when its blocks are built; nothing here contacts Google."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                "client_secret": "x", "refresh_token": "x"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    yield


def documents() -> dict[str, Any]:
    from knot_prefect.documents import validate_file

    return {spec.name: block for spec, block in validate_file(PROJECT / "blocks.yaml", ENVIRON)}


def test_block_documents_validate() -> None:
    blocks = documents()
    assert blocks["bq-warehouse"].dataset == "ml"
    assert blocks["bq-warehouse"].location == "EU"
    assert blocks["vertex-l4"].gpu_kind == "nvidia-l4"


def test_vertex_job_uses_the_profile() -> None:
    from prefect.client.schemas.objects import FlowRun

    from knot_prefect.deploy import render_job_configuration

    profile = documents()["vertex-l4"]
    deployment = yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"][0]
    written = dict(deployment["work_pool"]["job_variables"])
    assert written.pop("image") == "{{ build-image.image }}"
    # Where and as whom the job runs are deployment settings, not profile fields.
    assert written["service_account_name"] == "{{ $VERTEX_SERVICE_ACCOUNT }}"
    region = {"region": written["region"], "service_account_name": "runner@knot.iam"}
    rendered = profile.job_variables("vertex-ai", region)
    assert {**written, **region, "image": rendered["image"]} == rendered

    run = FlowRun(flow_id=uuid.uuid4(), deployment_id=uuid.uuid4(), name="check")
    job = render_job_configuration("vertex-ai", profile, job_variables=region, flow_run=run)
    pool = job.job_spec["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "g2-standard-8",
                                    "accelerator_type": "NVIDIA_L4", "accelerator_count": 1}
    assert pool["container_spec"]["image_uri"] == ENVIRON["IMAGE"]
