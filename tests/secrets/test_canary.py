"""Canary secrets: saved in every secret field of every block type, found nowhere else.

Every secret field of every knot block type (nested credentials blocks included) gets a
unique canary value. The flow templates then run against those documents, passing and
failing on purpose (a wrong host, a tracking server that is down, an SQL error, a
contract that fails), next to ``knot serve``, ``knot doctor`` and ``knot blocks
export``. Afterwards the canaries are searched for in Prefect (logs, artifacts, events,
flow and task run states and parameters, block documents read without secrets), in
MLflow (params, tags, metrics, artifacts, model versions), in every file under the knot
home and in everything written to stdout and stderr. Zero hits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.cloud_warehouses.conftest import rsa_private_key_pem
from tests.services import free_port

pytestmark = [pytest.mark.heavy, pytest.mark.services, pytest.mark.timeout(1200)]

PREFIX = f"knot-canary-{uuid.uuid4().hex[:12]}"
ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS, DAYS = 200, 10
runner = CliRunner()


def canary(field: str) -> str:
    return f"{PREFIX}-{field}"


class Haystack:
    """Every place searched, by kind, with the text found there."""

    def __init__(self, markers: list[str]) -> None:
        self.markers = markers
        self.places: dict[str, int] = {}
        self.hits: list[str] = []

    def search(self, kind: str, where: str, text: str | bytes) -> None:
        self.places[kind] = self.places.get(kind, 0) + 1
        data = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
        for marker in self.markers:
            if marker in data:
                start = data.index(marker)
                self.hits.append(f"{kind} {where}: ...{data[max(0, start - 120):start + 60]}...")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_server: str,
    postgres_service: Any,
) -> Iterator[dict[str, Any]]:
    """The demo's documents and data, plus one canary document per secret-holding shape."""
    from prefect_aws import AwsCredentials, MinIOCredentials
    from prefect_aws.s3 import S3Bucket
    from prefect_gcp import GcpCredentials
    from prefect_gcp.cloud_storage import GcsBucket
    from prefect_snowflake import SnowflakeCredentials

    from knot_prefect import (
        BigQueryWarehouse,
        DeltaLake,
        FeastFeatureStore,
        IcebergTable,
        MLflowTracking,
        ParquetLake,
        SnowflakeWarehouse,
        SparkEngine,
        SqlWarehouse,
    )
    from knot_prefect.demo.data import DATASET_END
    from knot_prefect.demo.seed import prepare_demo
    from knot_prefect.tasks import feast_apply, materialize

    home: Path = tmp_path_factory.mktemp("canary-home")
    pem = rsa_private_key_pem()
    database = f"canary_{uuid.uuid4().hex[:8]}"
    postgres_service.create_database(database)
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        prepare_demo(customers=CUSTOMERS, days=DAYS, seed=5)
        feast_apply.fn("local-features")
        materialize.fn("local-features", end=DATASET_END + timedelta(seconds=1))

        experiment = f"canary-{uuid.uuid4().hex[:6]}"
        local_features = FeastFeatureStore.load("local-features")
        service_account = {
            "type": "service_account",
            "project_id": "canary-project",
            "private_key_id": canary("service-account-key-id"),
            "private_key": pem,
            "client_email": "canary@canary-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{down}/token",
        }
        aws = AwsCredentials(
            aws_access_key_id="AKIACANARY",
            aws_secret_access_key=canary("aws-secret-access-key"),
            aws_client_parameters={"endpoint_url": down},
        )
        minio = MinIOCredentials(
            minio_root_user="canary",
            minio_root_password=canary("minio-root-password"),
            aws_client_parameters={"endpoint_url": down},
        )
        documents: dict[str, Any] = {
            "canary-mlflow": MLflowTracking(
                tracking_uri=mlflow_server, username="canary-user",
                password=canary("mlflow-password"), experiment_name=experiment,
            ),
            "canary-mlflow-token": MLflowTracking(
                tracking_uri=mlflow_server, token=canary("mlflow-token"),
                experiment_name=experiment,
            ),
            "canary-mlflow-down": MLflowTracking(
                tracking_uri=down, token=canary("mlflow-down-token"), connect_attempts=1,
            ),
            "canary-features": local_features.model_copy(update={
                "online_store_password": canary("online-store-password"),
                "offline_store_password": canary("offline-store-password"),
                "secrets": {"CANARY_REDIS": canary("secrets-dict")},
            }),
            "canary-features-s3": FeastFeatureStore(
                s3_bucket=S3Bucket(bucket_name="canary-bucket", credentials=aws),
                cache_dir=str(home / "feast-cache"),
            ),
            "canary-features-minio": FeastFeatureStore(
                s3_bucket=S3Bucket(bucket_name="canary-bucket", credentials=minio),
                cache_dir=str(home / "feast-cache"),
            ),
            "canary-features-gcs": FeastFeatureStore(
                gcs_bucket=GcsBucket(
                    bucket="canary-bucket",
                    gcp_credentials=GcpCredentials(service_account_info=service_account),
                ),
                cache_dir=str(home / "feast-cache"),
            ),
            "canary-postgres": SqlWarehouse(
                url=postgres_service.sqlalchemy_url(database),
                password=canary("postgres-password"),
            ),
            "canary-wrong-host": SqlWarehouse(
                url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/{database}",
                password=canary("wrong-host-password"),
            ),
            "canary-lake-s3": ParquetLake(path="lake", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=aws)),
            "canary-lake-minio": ParquetLake(path="lake", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=minio)),
            "canary-lake-gcs": ParquetLake(path="lake", gcs_bucket=GcsBucket(
                bucket="canary-bucket",
                gcp_credentials=GcpCredentials(service_account_info=service_account),
            )),
            "canary-iceberg-postgres-catalog": IcebergTable(
                path=str(home / "iceberg"), catalog_uri=(
                    f"postgresql+psycopg://canary:{canary('iceberg-catalog-password')}"
                    f"@127.0.0.1:{free_port()}/{database}")),
            "canary-iceberg-rest-catalog": IcebergTable(
                path=str(home / "iceberg"), catalog_uri=f"{down}/catalog",
                catalog_credential=canary("iceberg-rest-credential")),
            "canary-bigquery": BigQueryWarehouse(
                gcp_credentials=GcpCredentials(service_account_info=service_account),
                dataset="canary", api_endpoint=down,
            ),
        }
        # Snowflake's connector and Google's token refresh retry an unreachable service
        # for minutes: these documents are saved after doctor runs, then exported and
        # searched like the others.
        after_doctor = {
            name: documents.pop(name)
            for name in ("canary-features-gcs", "canary-lake-gcs", "canary-bigquery")
        }
        after_doctor |= {
            "canary-snowflake-password": SnowflakeWarehouse(
                credentials=SnowflakeCredentials(
                    account="canary", user="canary", password=canary("snowflake-password")),
                database="d", warehouse="w",
            ),
            "canary-snowflake-token": SnowflakeWarehouse(
                credentials=SnowflakeCredentials(
                    account="canary", user="canary", authenticator="oauth",
                    token=canary("snowflake-token")),
                database="d", warehouse="w",
            ),
            "canary-snowflake-key": SnowflakeWarehouse(
                credentials=SnowflakeCredentials(
                    account="canary", user="canary", private_key=pem,
                    private_key_passphrase=canary("snowflake-passphrase")),
                database="d", warehouse="w",
            ),
            # Saved after doctor like the GCS lake: an object store's client retries.
            "canary-delta-s3": DeltaLake(path="delta", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=aws)),
            "canary-delta-minio": DeltaLake(path="delta", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=minio)),
            "canary-delta-gcs": DeltaLake(path="delta", gcs_bucket=GcsBucket(
                bucket="canary-bucket",
                gcp_credentials=GcpCredentials(service_account_info=service_account),
            )),
            "canary-iceberg-s3": IcebergTable(path="iceberg", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=aws),
                catalog_uri=f"{down}/catalog"),
            "canary-iceberg-minio": IcebergTable(path="iceberg", s3_bucket=S3Bucket(
                bucket_name="canary-bucket", credentials=minio),
                catalog_uri=f"{down}/catalog"),
            "canary-spark": SparkEngine(master="sc://127.0.0.1:9", secret_conf={
                "token": canary("spark-connect-token")}),
        }
        for name, block in documents.items():
            block.save(name, overwrite=True)
        yield {
            "home": home, "documents": documents, "after_doctor": after_doctor,
            "pem_marker": pem.splitlines()[5], "as_of": DATASET_END,
            "mlflow": mlflow_server, "experiment": experiment,
        }


def _secret_values(client: Any, data: Any, path: list[str]) -> list[Any]:
    """Values at a Prefect ``secret_fields`` path (``a.b.*``) of a document's data."""
    if isinstance(data, dict) and "$ref" in data:  # a nested block saved as its own document
        reference = data["$ref"]
        document_id = reference.get("block_document_id") if isinstance(reference, dict) else None
        data = client.read_block_document(document_id, include_secrets=True).data
    if not path:
        return [data]
    if not isinstance(data, dict):
        return []
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for value in data.values() for v in _secret_values(client, value, rest)]
    return _secret_values(client, data[head], rest) if head in data else []


def _assert_every_secret_field_holds_a_canary(names: list[str], markers: list[str]) -> int:
    """Each secret field of each knot block type holds a canary in some saved document."""
    from prefect.client.orchestration import get_client

    from knot_prefect.blocks.registry import load_block_classes

    covered: dict[str, set[str]] = {}
    with get_client(sync_client=True) as client:
        for name in names:
            document = client.read_block_document_by_name(
                name, block_type_slug=_slug_of(client, name), include_secrets=True
            )
            slug = document.block_type.slug if document.block_type else "?"
            secret_fields = document.block_schema.fields.get("secret_fields", [])
            for path in secret_fields:
                values = _secret_values(client, document.data, path.split("."))
                if any(m in json.dumps(v) for v in values for m in markers):
                    covered.setdefault(slug, set()).add(path)
    fields = 0
    for cls in load_block_classes().values():
        wanted = set(cls.model_json_schema().get("secret_fields", []))
        missing = wanted - covered.get(cls.get_block_type_slug(), set())
        assert not missing, f"{cls.__name__}: no canary document covers {sorted(missing)}"
        fields += len(wanted)
    return fields


def _slug_of(client: Any, name: str) -> str:
    matches = [d for d in client.read_block_documents(include_secrets=False) if d.name == name]
    assert len(matches) == 1, name
    return str(matches[0].block_type.slug)


def _run_flows(world: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """Every flow template, passing and failing on purpose: ``(label, final state)`` of
    each, and the seconds each took."""
    from knot_prefect import SqlWarehouse
    from knot_prefect.demo import params as demo
    from knot_prefect.flows import (
        batch_inference_flow,
        data_quality_flow,
        feature_materialization_flow,
        monitoring_flow,
        training_flow,
        tuning_flow,
    )

    model = f"canary-churn-{uuid.uuid4().hex[:6]}"
    training = demo.training_parameters(
        warehouse="local-warehouse", feature_store="canary-features", model_name=model
    )
    scoring = demo.scoring_parameters(
        warehouse="local-warehouse", feature_store="canary-features", tracking="canary-mlflow",
        quarantine_table="canary_quarantine", model_name=model, alias="champion",
        output_table="canary_predictions", as_of=world["as_of"],
    )
    SqlWarehouse.load("canary-postgres").write(
        __import__("pandas").DataFrame({"amount": [1.0, -5.0]}), "payments", mode="replace"
    )
    runs: list[tuple[str, Any]] = [
        ("training", lambda: training_flow(tracking="canary-mlflow", **training)),
        ("training-token", lambda: training_flow(tracking="canary-mlflow-token", **training)),
        ("training-tracking-down", lambda: training_flow(tracking="canary-mlflow-down",
                                                         **training)),
        ("batch-inference", lambda: batch_inference_flow(**scoring)),
        ("batch-inference-wrong-host", lambda: batch_inference_flow(
            **{**scoring, "warehouse": "canary-wrong-host"})),
        ("monitoring", lambda: monitoring_flow(**demo.monitoring_parameters(
            warehouse="local-warehouse", feature_store="canary-features",
            tracking="canary-mlflow", model_name=model, alias="champion",
            predictions_table="canary_predictions"))),
        ("data-quality", lambda: data_quality_flow(
            table_or_sql="churn_labels", contract="churn-labels",
            warehouse="local-warehouse")),
        ("data-quality-contract-fails", lambda: data_quality_flow(
            table_or_sql="payments", contract="canary-positive", warehouse="canary-postgres",
            on_failure="raise")),
        ("data-quality-sql-error", lambda: data_quality_flow(
            table_or_sql="select * from no_such_table", contract="canary-positive",
            warehouse="canary-postgres")),
        ("data-quality-wrong-host", lambda: data_quality_flow(
            table_or_sql="payments", contract="canary-positive",
            warehouse="canary-wrong-host")),
        ("feature-materialization", lambda: feature_materialization_flow(
            store="canary-features", end=world["as_of"] + timedelta(seconds=1))),
        ("feature-materialization-s3-down", lambda: feature_materialization_flow(
            store="canary-features-s3")),
        ("tuning", lambda: tuning_flow(
            "tests.tuning.trainers:quadratic", {"x": [0.0, 1.0]}, None, "score",
            strategy="grid", tracking="canary-mlflow", search_name=f"canary-{model}")),
        ("tuning-fails", lambda: tuning_flow(
            "tests.tuning.trainers:always_fails", {"x": [1, 2]}, None, "score",
            strategy="grid", tracking="canary-mlflow-token",
            search_name=f"canary-fail-{model}")),
    ]
    from knot_prefect import DataContract

    DataContract(schema_yaml=(
        "columns:\n  amount:\n    dtype: float64\n    checks:\n"
        "      greater_than_or_equal_to: 0\n"
    )).save("canary-positive", overwrite=True)
    outcomes = []
    seconds: dict[str, float] = {}
    for label, run in runs:
        started = time.monotonic()
        try:
            run()
            outcomes.append((label, "Completed"))
        except Exception as exc:  # failing on purpose; the message is searched too
            outcomes.append((label, f"Failed: {type(exc).__name__}: {exc}"))
        seconds[label] = round(time.monotonic() - started, 1)
        print(f"canary flow {label} ({seconds[label]} s): {outcomes[-1][1][:300]}",
              file=sys.__stderr__)
    return outcomes, seconds


def _serve(world: dict[str, Any], api_url: str, model: str) -> str:
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": api_url, "KNOT_HOME": str(world["home"]),
           "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "knot_prefect.cli.main", "serve", "--model",
               f"{model}@champion", "--features", "canary-features", "--tracking",
               "canary-mlflow", "--port", str(port), "--refresh", "2"]
    log = world["home"].parent / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        for customer in (1, 10**9, "not-a-key"):
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"http://127.0.0.1:{port}/predict",
                           json={"entity": {"customer_id": customer}}, timeout=30)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    return log.read_text(errors="replace")


def _search_prefect(haystack: Haystack) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            logs = client.read_logs(offset=offset, limit=200)
            for log in logs:
                haystack.search("prefect log", str(log.id), log.message)
            if len(logs) < 200:
                break
            offset += len(logs)
        for artifact in client.read_artifacts():
            haystack.search("prefect artifact", str(artifact.key),
                            json.dumps(artifact.data, default=str) + str(artifact.description))
        for flow_run in client.read_flow_runs(limit=200):
            state = flow_run.state
            haystack.search("prefect flow run", flow_run.name, json.dumps({
                "message": state.message if state else None,
                "parameters": flow_run.parameters,
            }, default=str))
        for task_run in client.read_task_runs(limit=200):
            state = task_run.state
            haystack.search("prefect task run", task_run.name,
                            str(state.message if state else ""))
        for document in client.read_block_documents(include_secrets=False):
            haystack.search("prefect block document", str(document.name),
                            json.dumps(document.data, default=str))
        page: dict[str, Any] | None = client._client.post(
            "/events/filter", json={"limit": 50}
        ).json()
        while page:
            for event in page["events"]:
                haystack.search("prefect event", event["event"], json.dumps(event))
            next_page = page.get("next_page")
            page = client._client.get(next_page).json() if next_page else None


def _search_mlflow(haystack: Haystack, world: dict[str, Any], tmp: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=world["mlflow"])
    experiment = client.get_experiment_by_name(world["experiment"])
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs, "no MLflow run was logged"
    for run in runs:
        haystack.search("mlflow run", run.info.run_id, json.dumps({
            "params": run.data.params, "tags": run.data.tags, "metrics": run.data.metrics,
            "name": run.info.run_name,
        }))
        folder = tmp / run.info.run_id
        if client.list_artifacts(run.info.run_id):
            client.download_artifacts(run.info.run_id, "", str(folder))
            for path in folder.rglob("*"):
                if path.is_file():
                    haystack.search("mlflow artifact", str(path), path.read_bytes())
    for version in client.search_model_versions():
        haystack.search("mlflow model version", f"{version.name}/{version.version}",
                        json.dumps({"tags": version.tags, "source": version.source}))


def test_no_canary_secret_leaves_its_secret_field(
    world: dict[str, Any], capfd: pytest.CaptureFixture[str], tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    from prefect.settings import PREFECT_API_URL

    from knot_prefect.cli.main import app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(world["home"]))
        outcomes, seconds = _run_flows(world)
        for label, took in seconds.items():
            record_property(f"{label}_seconds", took)
        outputs: list[tuple[str, str]] = [("flow outcome", f"{a}: {b}") for a, b in outcomes]
        doctor = runner.invoke(app, ["doctor"], env={"COLUMNS": "400"})
        outputs.append(("knot doctor", doctor.output + repr(doctor.exception)))
        for name, block in world["after_doctor"].items():
            block.save(name, overwrite=True)
        names = [*world["documents"], *world["after_doctor"]]
        for name in names:
            exported = runner.invoke(app, ["blocks", "export", name])
            assert exported.exit_code == 0, exported.output
            outputs.append((f"knot blocks export {name}", exported.output))
        served = _serve(world, str(PREFECT_API_URL.value()), _trained_model(world))
        outputs.append(("knot serve", served))

    # A private key must be a real key: its body is the canary of that field.
    fields = _assert_every_secret_field_holds_a_canary(
        names, [PREFIX, world["pem_marker"]]
    )
    captured = capfd.readouterr()
    haystack = Haystack([PREFIX, world["pem_marker"]])
    haystack.search("stdout", "pytest capture", captured.out)
    haystack.search("stderr", "pytest capture", captured.err)
    for where, text in outputs:
        haystack.search("command output", where, text)
    _search_prefect(haystack)
    _search_mlflow(haystack, world, tmp_path)
    for path in world["home"].rglob("*"):
        if path.is_file():
            haystack.search("knot home file", str(path), path.read_bytes())

    failed = [label for label, state in outcomes if state != "Completed"]
    record_property("places_searched", sum(haystack.places.values()))
    for hit in haystack.hits[:20]:
        print(f"canary hit: {hit}", file=sys.__stderr__)
    print(f"canary suite: {len(outcomes)} flow runs ({len(failed)} failing on purpose), "
          f"{fields} secret fields, {sum(haystack.places.values())} places searched: "
          f"{haystack.places}", file=sys.__stderr__)
    assert "View run" in captured.out  # MLflow's own link line was printed, and searched
    assert {"training", "batch-inference", "monitoring", "data-quality", "tuning",
            "feature-materialization"} <= {label for label, state in outcomes
                                           if state == "Completed"}, outcomes
    assert {"training-tracking-down", "batch-inference-wrong-host",
            "data-quality-contract-fails", "data-quality-sql-error",
            "data-quality-wrong-host", "tuning-fails"} <= set(failed), outcomes
    assert haystack.hits == []


def _trained_model(world: dict[str, Any]) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=world["mlflow"])
    names = [m.name for m in client.search_registered_models() if m.name.startswith(
        "canary-churn-")]
    assert names, "training registered no model"
    return sorted(names)[-1]
