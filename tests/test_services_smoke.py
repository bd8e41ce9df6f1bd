"""The service harness itself: each service answers a real request."""

from __future__ import annotations

import urllib.request

from tests.services import PostgresService


def test_postgres_answers(postgres_database: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(postgres_database["dsn"]) as conn:
        assert conn.execute("select 40 + 2").fetchone() == (42,)


def test_postgres_databases_are_isolated(postgres_service: PostgresService) -> None:
    postgres_service.create_database("isolation_a")
    postgres_service.create_database("isolation_b")
    import psycopg

    with psycopg.connect(postgres_service.dsn("isolation_a"), autocommit=True) as conn:
        conn.execute("create table t (x int)")
    with psycopg.connect(postgres_service.dsn("isolation_b")) as conn:
        assert conn.execute("select to_regclass('t')").fetchone() == (None,)


def test_mlflow_server_health(mlflow_server: str) -> None:
    with urllib.request.urlopen(f"{mlflow_server}/health") as response:
        assert response.read().strip() == b"OK"


def test_moto_s3_round_trip(moto_s3: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket="smoke-bucket")
    s3.put_object(Bucket="smoke-bucket", Key="a.txt", Body=b"hello")
    assert s3.get_object(Bucket="smoke-bucket", Key="a.txt")["Body"].read() == b"hello"


def test_gcs_emulator_round_trip(gcs_emulator: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="test")
    bucket = client.create_bucket("smoke-bucket")
    bucket.blob("a.txt").upload_from_string(b"hello")
    assert client.bucket("smoke-bucket").blob("a.txt").download_as_bytes() == b"hello"


def test_redis_round_trip(redis_service: str) -> None:
    import redis

    host, port = redis_service.split(":")
    client = redis.Redis(host=host, port=int(port))
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_dask_cluster_has_two_workers(dask_scheduler: str) -> None:
    from distributed import Client

    with Client(dask_scheduler) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.submit(sum, [1, 2, 3]).result() == 6


def test_prefect_server_health(prefect_server: str) -> None:
    with urllib.request.urlopen(f"{prefect_server}/health") as response:
        assert response.status == 200
