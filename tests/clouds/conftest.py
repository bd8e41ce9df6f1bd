"""Buckets on moto's S3 and the GCS emulator, and the environment each blocks file reads."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest


def _token_server() -> str:
    """A loopback OAuth token endpoint: google-auth trades the service account key for
    a token there; the emulator accepts any token."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"access_token": "emulator", "expires_in": 3600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/token"


def service_account_file(folder: Path, project: str) -> Path:
    """A well-formed service account key file (its token endpoint is on loopback)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "test-key",
        "private_key": pem, "client_email": f"knot@{project}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": _token_server(),
    }))
    return path


@pytest.fixture(scope="module")
def aws_environ(moto_s3: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What blocks/aws.yaml reads, pointing at a fresh bucket on moto's S3."""
    import boto3

    bucket = f"knot-aws-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    folder = tmp_path_factory.mktemp("aws")
    return {
        "KNOT_S3_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_s3,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
        # Read by MLflow and Feast themselves, not by the documents.
        "MLFLOW_S3_ENDPOINT_URL": moto_s3,
        "FEAST_S3_ENDPOINT_URL": moto_s3,
    }


@pytest.fixture(scope="module")
def gcp_environ(gcs_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What blocks/gcp.yaml reads, pointing at a fresh bucket on the GCS emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    project = "knot-tests"
    bucket = f"knot-gcp-{uuid.uuid4().hex[:8]}"
    client = storage.Client(credentials=AnonymousCredentials(), project=project)  # type: ignore[no-untyped-call]
    client.create_bucket(bucket)
    folder = tmp_path_factory.mktemp("gcp")
    return {
        "KNOT_GCS_BUCKET": bucket,
        "GCP_PROJECT": project,
        "GCP_SERVICE_ACCOUNT_FILE": str(service_account_file(folder, project)),
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
    }
