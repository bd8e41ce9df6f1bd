"""Run inside a fresh venv holding knot-prefect with one extra: save, load and use the
blocks that extra promises against the Prefect API of PREFECT_API_URL.

    python extra_probes.py EXTRA '{"folder": ..., "s3_endpoint": ..., ...}'

Prints ``ok EXTRA`` at the end; any failure is a traceback and a non-zero exit.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

FRAME = pd.DataFrame({"customer_id": [1, 2, 3], "score": [0.1, 0.5, 0.9]})
ALL_EXTRAS = {
    "feast": "feast", "mlflow": "mlflow", "pandera": "pandera", "dask": "prefect_dask",
    "aws": "prefect_aws", "gcp": "prefect_gcp", "snowflake": "prefect_snowflake",
    "postgres": "adbc_driver_postgresql", "spark": "pyspark", "ray": "prefect_ray",
    "delta": "deltalake", "iceberg": "pyiceberg",
}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def round_trip(block: Any, prefix: str) -> Any:
    """Save a block document and load it back, as a flow would."""
    document = name(prefix)
    block.save(document)
    return type(block).load(document)


def only_this_extra(extra: str) -> None:
    """The venv holds this extra's packages and none of the others'."""
    for other, module in ALL_EXTRAS.items():
        installed = importlib.util.find_spec(module) is not None
        assert installed == (other == extra), f"{module} installed={installed} with [{extra}]"


def missing_blocks_name_their_extra(extra: str) -> None:
    """A block of another extra's integration says which extra to install."""
    import knot_prefect

    for block, needed in (("BigQueryWarehouse", "gcp"), ("SnowflakeWarehouse", "snowflake"),
                          ("DeltaLake", "delta"), ("IcebergTable", "iceberg")):
        if needed == extra:
            continue
        assert block not in dir(knot_prefect)
        try:
            getattr(knot_prefect, block)
        except ImportError as error:
            assert f"pip install 'knot-prefect[{needed}]'" in str(error), error
        else:
            raise AssertionError(f"{block} imported without the {needed} extra")


def feast(config: dict[str, Any]) -> None:
    from knot_prefect import FeastFeatureStore

    repo = Path(config["folder"]) / "feature_repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: probe\nprovider: local\nregistry: data/registry.db\n"
        "online_store: {type: sqlite, path: data/online.db}\noffline_store: {type: file}\n"
        "entity_key_serialization_version: 3\n"
    )
    store = round_trip(FeastFeatureStore(repo_path=str(repo)), "probe-feast").get_store()
    assert store.project == "probe"
    store.apply([])
    try:  # a nested block of an extra that is not installed names that extra
        FeastFeatureStore(repo_path=str(repo), s3_bucket={"bucket_name": "b"})
    except ValueError as error:
        assert "pip install 'knot-prefect[aws]'" in str(error), error
    else:
        raise AssertionError("an S3 repo without prefect-aws was accepted")


def mlflow(config: dict[str, Any]) -> None:
    from knot_prefect import MLflowTracking

    tracking = MLflowTracking(tracking_uri=f"sqlite:///{config['folder']}/mlflow.db",
                              experiment_name="probe")
    loaded = round_trip(tracking, "probe-mlflow")
    experiment_id = loaded.get_or_create_experiment_id()
    run = loaded.get_client().create_run(experiment_id)
    loaded.get_client().log_metric(run.info.run_id, "score", 0.5)
    assert loaded.get_client().get_run(run.info.run_id).data.metrics == {"score": 0.5}


def pandera(config: dict[str, Any]) -> None:
    from knot_prefect import DataContract
    from knot_prefect.tasks import validate_frame

    schema = (
        "schema_type: dataframe\napi: pandas\nname: probe\ncolumns:\n"
        "  customer_id: {dtype: int64, nullable: false, unique: true}\n"
        "  score: {dtype: float64, in_range: {min_value: 0, max_value: 1}}\n"
    )
    contract = round_trip(DataContract(schema_yaml=schema, version_label="probe-v1"),
                          "probe-contract")
    rows, report = validate_frame(FRAME, contract, publish_report=False)
    assert len(rows) == 3 and report.passed


def dask(config: dict[str, Any]) -> None:
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    from knot_prefect import ComputeProfile

    @task
    def double(value: int) -> int:
        return value * 2

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 1, "processes": False}))
    def doubled() -> list[int]:
        return [future.result() for future in double.map([1, 2, 3])]

    assert doubled() == [2, 4, 6]
    profile = round_trip(ComputeProfile(cpu=1), "probe-profile")
    assert profile.job_variables("process") == {}


def aws(config: dict[str, Any]) -> None:
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    from knot_prefect import ParquetLake

    credentials = AwsCredentials(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=config["s3_endpoint"]),
    )
    bucket = name("probe")
    credentials.get_s3_client().create_bucket(Bucket=bucket)
    lake = round_trip(
        ParquetLake(s3_bucket=S3Bucket(bucket_name=bucket, credentials=credentials),
                    path="lake"), "probe-s3-lake")
    lake.write(FRAME, "scores", mode="replace")
    assert lake.read("select count(*) as n from scores")["n"].iloc[0] == 3
    try:  # a nested block of an extra that is not installed names that extra
        ParquetLake(gcs_bucket={"bucket": "b"})
    except ValueError as error:
        assert "pip install 'knot-prefect[gcp]'" in str(error), error
    else:
        raise AssertionError("a GCS lake without prefect-gcp was accepted")


def gcp(config: dict[str, Any]) -> None:
    from prefect_gcp import GcpCredentials, GcsBucket

    from knot_prefect import BigQueryWarehouse, ParquetLake

    credentials = GcpCredentials(service_account_info=config["service_account"],
                                 project="knot-tests")
    warehouse = round_trip(BigQueryWarehouse(gcp_credentials=credentials, dataset="probe"),
                           "probe-bigquery")
    assert warehouse.dataset == "probe"
    lake = round_trip(
        ParquetLake(gcs_bucket=GcsBucket(bucket=config["gcs_bucket"], gcp_credentials=credentials),
                    path=name("lake")), "probe-gcs-lake")
    lake.write(FRAME, "scores", mode="replace")
    assert lake.read("select count(*) as n from scores")["n"].iloc[0] == 3


def snowflake(config: dict[str, Any]) -> None:
    import fakesnow  # a test tool installed beside the extra: Snowflake in-process
    from prefect_snowflake import SnowflakeCredentials

    from knot_prefect import SnowflakeWarehouse

    credentials = SnowflakeCredentials(account="probe", user="knot", password="probe-secret")
    warehouse = round_trip(SnowflakeWarehouse(credentials=credentials, database="KNOT",
                                              warehouse="COMPUTE_WH", schema_name="ML"),
                           "probe-snowflake")
    with fakesnow.patch():
        warehouse.write(FRAME, "scores", mode="replace")
        assert len(warehouse.read("select * from scores")) == 3


def postgres(config: dict[str, Any]) -> None:
    from knot_prefect import SqlWarehouse

    warehouse = round_trip(SqlWarehouse(url=config["postgres_url"]), "probe-postgres")
    warehouse.write(FRAME, "scores", mode="replace")
    assert len(warehouse.read("select * from scores")) == 3


def spark(config: dict[str, Any]) -> None:
    from knot_prefect import SparkEngine

    engine = round_trip(SparkEngine(master="local[1]", conf={"spark.ui.enabled": "false"}),
                        "probe-spark")
    assert engine.builder()._options["spark.master"] == "local[1]"  # pyspark, no JVM yet


def ray(config: dict[str, Any]) -> None:
    from knot_prefect.flows.ray_runner import ray_runner_for, task_resources

    assert type(ray_runner_for("ray")).__name__ == "RayTaskRunner"  # no Ray started
    assert task_resources({"num_cpus": 1}) == {"num_cpus": 1}


def versioned_lake(lake: Any, prefix: str) -> None:
    """Write, upsert and read back a table, then read its first version again."""
    lake = round_trip(lake, prefix)
    lake.write(FRAME, "scores", mode="replace")
    first = lake.table_version("scores")
    update = pd.DataFrame({"customer_id": [3, 4], "score": [0.2, 0.7]})
    lake.write(update, "scores", mode="upsert", keys=["customer_id"])
    scores = lake.read("select customer_id, score from scores order by customer_id")
    assert scores["score"].tolist() == [0.1, 0.5, 0.2, 0.7], scores
    assert lake.table_version("scores") != first
    pinned, read = lake.read_versioned("select score from scores", versions={"scores": first})
    assert sorted(pinned.column("score").to_pylist()) == [0.1, 0.5, 0.9], pinned
    assert read == {"scores": first}


def delta(config: dict[str, Any]) -> None:
    from knot_prefect import DeltaLake

    versioned_lake(DeltaLake(path=str(Path(config["folder"]) / "delta")), "probe-delta")


def iceberg(config: dict[str, Any]) -> None:
    from knot_prefect import IcebergTable

    versioned_lake(IcebergTable(path=str(Path(config["folder"]) / "iceberg")), "probe-iceberg")


if __name__ == "__main__":
    extra, settings = sys.argv[1], json.loads(sys.argv[2])
    only_this_extra(extra)
    missing_blocks_name_their_extra(extra)
    globals()[extra](settings)
    print(f"ok {extra}")
