"""Warehouse fixtures: one block per backend path, each on a real, empty store.

Servers and emulators come from the session fixtures of ``tests/conftest.py``:
PostgreSQL, moto's S3 and the GCS emulator; Snowflake is fakesnow in-process, and
BigQuery is the real client against the recording endpoint of
``tests/cloud_warehouses/bigquery_endpoint.py`` (requests are checked, not run).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from knot_prefect.blocks.warehouses.base import Warehouse
from tests.lake_formats._iceberg import ICEBERG_BACKENDS, make_iceberg_lake
from tests.lake_formats._lakes import DELTA_BACKENDS, make_delta_lake

#: Backends that store and return rows, on which the whole contract runs.
BACKENDS = [
    "duckdb", "postgres-adbc", "postgres-sqlalchemy", "sqlite", "snowflake",
    "lake-local", "lake-s3", "lake-gcs", *DELTA_BACKENDS, *ICEBERG_BACKENDS,
]
#: Every backend path, BigQuery included (it runs what is checked before a request).
ALL_BACKENDS = [*BACKENDS, "bigquery"]


def make_warehouse(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Warehouse:
    """A warehouse of ``backend`` on a fresh database, folder or bucket folder."""
    from knot_prefect import DuckDBWarehouse, ParquetLake, SqlWarehouse

    if backend == "duckdb":
        return DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    if backend == "sqlite":
        return SqlWarehouse(url=f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    if backend.startswith("postgres"):
        database = request.getfixturevalue("postgres_database")
        return SqlWarehouse(url=database["url"], fast_path=backend == "postgres-adbc")
    if backend == "snowflake":
        return request.getfixturevalue("snowflake_warehouse")  # type: ignore[no-any-return]
    if backend == "bigquery":
        return request.getfixturevalue("bigquery_warehouse")  # type: ignore[no-any-return]
    if backend in DELTA_BACKENDS:
        return make_delta_lake(backend, tmp_path, request)
    if backend in ICEBERG_BACKENDS:
        return make_iceberg_lake(backend, tmp_path, request)
    from tests.cloud_warehouses.conftest import make_gcs_lake, make_s3_lake

    folder = f"lake-{uuid.uuid4().hex[:10]}"
    if backend == "lake-s3":
        endpoint = request.getfixturevalue("moto_s3")
        return make_s3_lake(endpoint, request.getfixturevalue("contract_s3_bucket"), folder)
    if backend == "lake-gcs":
        return make_gcs_lake(request.getfixturevalue("contract_gcs_bucket"), folder)
    assert backend == "lake-local", backend
    return ParquetLake(path=str(tmp_path / folder))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend path a contract test runs on."""
    return str(request.param)


@pytest.fixture
def warehouse(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """The same tests run against every backend path."""
    return make_warehouse(backend, tmp_path, request)


CONTRACT_BUCKET = "knot-contract-lake"


@pytest.fixture(scope="session")
def contract_s3_bucket(moto_s3: str) -> str:
    import boto3

    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(
        Bucket=CONTRACT_BUCKET
    )
    return CONTRACT_BUCKET


@pytest.fixture(scope="session")
def contract_gcs_bucket(gcs_emulator: str) -> str:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="knot-tests")  # type: ignore[no-untyped-call]
    client.create_bucket(CONTRACT_BUCKET)
    return CONTRACT_BUCKET


@pytest.fixture
def snowflake_warehouse() -> Iterator[Warehouse]:
    """Snowflake emulated by fakesnow, patched for the test's duration."""
    import fakesnow
    from prefect_snowflake import SnowflakeCredentials

    from knot_prefect import SnowflakeWarehouse

    credentials = SnowflakeCredentials(account="knot-test", user="knot",
                                       password="sf-contract-password")
    with fakesnow.patch():
        yield SnowflakeWarehouse(credentials=credentials, database="KNOT",
                                 warehouse="COMPUTE_WH", schema_name="ML")


@pytest.fixture(scope="session")
def bigquery_endpoint() -> Iterator[object]:
    from tests.cloud_warehouses.bigquery_endpoint import start_endpoint

    state, server = start_endpoint()
    yield state
    server.shutdown()


@pytest.fixture
def bigquery_warehouse(bigquery_endpoint: object) -> Warehouse:
    from prefect_gcp import GcpCredentials

    from knot_prefect import BigQueryWarehouse
    from tests.cloud_warehouses.bigquery_endpoint import BigQueryEndpoint
    from tests.cloud_warehouses.conftest import service_account_info

    assert isinstance(bigquery_endpoint, BigQueryEndpoint)
    bigquery_endpoint.reset()
    credentials = GcpCredentials(
        service_account_info=service_account_info("knot-proj", f"{bigquery_endpoint.url}/token"),
        project="knot-proj",
    )
    return BigQueryWarehouse(gcp_credentials=credentials, dataset="ml",
                             api_endpoint=bigquery_endpoint.url)


@pytest.fixture
def pg_warehouse(postgres_database: dict[str, str]) -> Warehouse:
    from knot_prefect import SqlWarehouse

    return SqlWarehouse(url=postgres_database["url"])


@pytest.fixture
def make(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Warehouse]:
    return lambda backend: make_warehouse(backend, tmp_path, request)
