"""The FeastFeatureStore block: repo sources, secrets, caching, connection check."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from knot_prefect.blocks.feast_store import FeastFeatureStore
from knot_prefect.errors import ConfigurationError
from knot_prefect.features.local_repo import write_local_feature_store_yaml
from knot_prefect.tasks.features import feast_apply, materialize, online_features, training_set
from tests.features.conftest import NOW, REDIS_PASSWORD, T0, FeatureRepo

ENTITIES = pd.DataFrame({"customer_id": [1, 3], "event_timestamp": [NOW, NOW]})


def _upload(local: Path, put: Any, folder: str) -> None:
    for path in local.rglob("*"):
        if path.is_file():
            put(f"{folder}/{path.relative_to(local).as_posix()}", path.read_bytes())


def _s3_block(endpoint: str, folder: str, cache: Path) -> tuple[FeastFeatureStore, Any]:
    import boto3
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = "knot-feast-tests"
    if bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=bucket)
    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    block = FeastFeatureStore(
        s3_bucket=S3Bucket(bucket_name=bucket, credentials=credentials),
        bucket_folder=folder,
        cache_dir=str(cache),
    )
    return block, lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data)


def _token_server() -> str:
    """A loopback OAuth token endpoint: google-auth trades the service account key
    for a token there before each GCS call; the emulator accepts any token."""

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


def _gcs_block(folder: str, cache: Path) -> tuple[FeastFeatureStore, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from prefect_gcp import GcpCredentials, GcsBucket

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]
    bucket = "knot-feast-tests"
    if client.lookup_bucket(bucket) is None:
        client.create_bucket(bucket)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # A well-formed service account: the emulator accepts any, google-auth parses it.
    info = {
        "type": "service_account",
        "project_id": "knot-tests",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "knot-tests@knot-tests.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": _token_server(),
    }
    credentials = GcpCredentials(service_account_info=info, project="knot-tests")
    block = FeastFeatureStore(
        gcs_bucket=GcsBucket(bucket=bucket, gcp_credentials=credentials),
        bucket_folder=folder,
        cache_dir=str(cache),
    )
    target = client.bucket(bucket)
    return block, lambda name, data: target.blob(name).upload_from_string(data)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_repo_synced_from_a_bucket(
    kind: str, request: pytest.FixtureRequest, local_repo: FeatureRepo, tmp_path: Path
) -> None:
    folder = f"repos/{uuid.uuid4().hex[:8]}"
    cache = tmp_path / "cache"
    if kind == "s3":
        block, put = _s3_block(request.getfixturevalue("moto_s3"), folder, cache)
    else:
        request.getfixturevalue("gcs_emulator")
        block, put = _gcs_block(folder, cache)
    _upload(local_repo.path, put, folder)
    shutil.rmtree(local_repo.path)  # only the bucket holds the repo now

    assert feast_apply.fn(block)["applied"] is True
    frame = training_set.fn(block, ENTITIES, ["customer_activity:spend"])
    assert frame["spend"].tolist() == [20.0, 7.0]
    repo = Path(str(block.get_store().repo_path))
    assert repo.is_relative_to(cache) and (repo / "definitions.py").is_file()

    # A changed repo in the bucket arrives on refresh; the cached copy is replaced.
    put(f"{folder}/extra.py", b"from definitions import customer_plan as plan_copy\n")
    assert not (repo / "extra.py").exists()
    block.get_store(refresh=True)
    assert (repo / "extra.py").is_file()


def test_secrets_are_injected_at_run_time_and_never_kept(
    redis_postgres_repo: FeatureRepo,
) -> None:
    block = redis_postgres_repo.block
    for text in (repr(block), str(block), block.model_dump_json(), str(block.model_dump())):
        assert REDIS_PASSWORD not in text
    assert (
        "${KNOT_ONLINE_STORE_PASSWORD}"
        in (redis_postgres_repo.path / "feature_store.yaml").read_text()
    )

    feast_apply.fn(block)
    materialize.fn(block, end=NOW)
    assert online_features.fn(block, [{"customer_id": 1}], ["customer_activity:spend"])[
        "spend"
    ].tolist() == [20.0]

    # The password was used (Redis refuses a wrong one) and stored nowhere.
    wrong = redis_postgres_repo.make_block(online_store_password="not-the-password")
    with pytest.raises(Exception, match=r"(?i)(auth|password|WRONGPASS)") as refused:
        online_features.fn(wrong, [{"customer_id": 1}], ["customer_activity:spend"])
    assert "not-the-password" not in str(refused.value)
    assert REDIS_PASSWORD not in os.environ.values()
    for path in redis_postgres_repo.path.rglob("*"):
        if path.is_file():
            assert REDIS_PASSWORD.encode() not in path.read_bytes(), path


def test_saved_block_works_by_name(local_repo: FeatureRepo) -> None:
    name = f"features-{uuid.uuid4().hex[:8]}"
    local_repo.block.save(name)
    assert feast_apply.fn(name)["applied"] is True
    materialize.fn(name, end=T0 + pd.Timedelta(days=3))
    assert online_features.fn(name, [{"customer_id": 2}], "churn_model")["seats"].tolist() == [1]

    with pytest.raises(ConfigurationError) as missing:
        feast_apply.fn("no-such-features")
    assert "No FeastFeatureStore block document is named 'no-such-features'" in str(missing.value)
    assert name in str(missing.value)


def test_store_is_cached_per_block_and_rebuilt_on_change(local_repo: FeatureRepo) -> None:
    block = local_repo.block
    store = block.get_store()
    assert block.get_store() is store
    assert block.model_copy().get_store() is store  # copies share the opened store
    assert local_repo.make_block().get_store() is not store

    block.repo_path = str(local_repo.path) + "/"
    assert block.get_store() is not store


def test_check_connection_reads_the_registry(local_repo: FeatureRepo) -> None:
    project = local_repo.block.get_store().project
    assert local_repo.block.check_connection() == (
        f"project {project}: 0 feature view(s), online store sqlite, offline store file"
    )
    feast_apply.fn(local_repo.block)
    assert "2 feature view(s)" in local_repo.block.check_connection()


def test_local_feature_store_yaml(tmp_path: Path) -> None:
    written = write_local_feature_store_yaml(tmp_path / "repo", "churn")
    stamp = written.stat().st_mtime_ns
    assert write_local_feature_store_yaml(tmp_path / "repo", "churn").stat().st_mtime_ns == stamp

    config = FeastFeatureStore(repo_path=str(tmp_path / "repo")).get_store().config
    assert (config.project, config.provider) == ("churn", "local")
    assert (config.online_store.type, config.offline_store.type) == ("sqlite", "file")
    assert config.entity_key_serialization_version == 3

    with pytest.raises(ValueError, match="project name 'my churn' is invalid"):
        write_local_feature_store_yaml(tmp_path / "other", "my churn")


def test_tasks_accept_an_open_feast_store(local_repo: FeatureRepo) -> None:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(local_repo.path))
    assert feast_apply.fn(store)["applied"] is True
    assert feast_apply.fn(local_repo.block)["applied"] is False  # same registry, up to date
    assert materialize.fn(store, views=["customer_plan"], end=NOW)[0]["rows"] == 3
    with pytest.raises(TypeError, match="Expected a FeastFeatureStore block"):
        feast_apply.fn(42)  # type: ignore[arg-type]
