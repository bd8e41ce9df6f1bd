"""Feast repos on two configurations, written fresh per test on shared services.

``local``: SQLite online store, file (Parquet) offline store, no server.
``redis-postgres``: a Redis online store reached as an ACL user with a password, and
a PostgreSQL offline store; both passwords come from the block's SecretStr fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pytest

from knot_prefect.features.local_repo import write_local_feature_store_yaml

# Feature values are placed relative to "now" so freshness checks read real ages.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
T0 = NOW - timedelta(days=10)
REDIS_USER = "knot_feast"
REDIS_PASSWORD = "s3cr#t:pw"  # YAML-special characters on purpose
PASSWORD_REFERENCE = "${KNOT_ONLINE_STORE_PASSWORD}"

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, ValueType
from feast.types import Float64, Int64

from sources import activity_source, plan_source

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)

customer_activity = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[Field(name="spend", dtype=Float64), Field(name="orders", dtype=Int64)],
    source=activity_source,
)

customer_plan = FeatureView(
    name="customer_plan",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[Field(name="seats", dtype=Int64)],
    source=plan_source,
)

churn_model = FeatureService(name="churn_model", features=[customer_activity, customer_plan])
"""

FILE_SOURCES = """
from feast import FileSource

activity_source = FileSource(
    name="activity", path="data/activity.parquet", timestamp_field="event_timestamp"
)
plan_source = FileSource(name="plan", path="data/plan.parquet", timestamp_field="event_timestamp")
"""

POSTGRES_SOURCES = """
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)

activity_source = PostgreSQLSource(
    name="activity", table="activity", timestamp_field="event_timestamp"
)
plan_source = PostgreSQLSource(name="plan", table="plan", timestamp_field="event_timestamp")
"""


def activity_frame() -> pd.DataFrame:
    """Customer 1 spends 10 at T0 and 20 two days later; 2 spends 5; 3 first shows at T0+1d."""
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "spend": [10.0, 20.0, 5.0, 7.0],
            "orders": [1, 2, 1, 3],
            "event_timestamp": [T0, T0 + timedelta(days=2), T0, T0 + timedelta(days=1)],
        }
    )


def plan_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [1, 2, 3], "seats": [5, 1, 2], "event_timestamp": [T0, T0, T0]}
    )


@dataclass
class FeatureRepo:
    """A written repo and the block that opens it."""

    name: str
    path: Path
    block: Any
    make_block: Callable[..., Any]


def _local_repo(path: Path, project: str) -> dict[str, Any]:
    write_local_feature_store_yaml(path, project)
    (path / "sources.py").write_text(FILE_SOURCES)
    activity_frame().to_parquet(path / "data" / "activity.parquet")
    plan_frame().to_parquet(path / "data" / "plan.parquet")
    return {}


def _redis_postgres_repo(
    path: Path, project: str, redis_address: str, database: dict[str, str]
) -> dict[str, Any]:
    import redis
    import sqlalchemy

    host, port = redis_address.split(":")
    client = redis.Redis(host=host, port=int(port))
    client.acl_setuser(
        REDIS_USER,
        enabled=True,
        passwords=[f"+{REDIS_PASSWORD}"],
        keys=["*"],
        commands=["+@all"],
    )
    engine = sqlalchemy.create_engine(database["url"])
    with engine.begin() as connection:
        activity_frame().to_sql("activity", connection, index=False)
        plan_frame().to_sql("plan", connection, index=False)
    engine.dispose()
    dsn = urlparse(database["dsn"])
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "feature_store.yaml").write_text(
        f"""\
project: {project}
provider: local
registry: data/registry.db
online_store:
  type: redis
  connection_string: "{redis_address},username={REDIS_USER},password={PASSWORD_REFERENCE}"
offline_store:
  type: postgres
  host: {dsn.hostname}
  port: {dsn.port}
  database: {database["name"]}
  db_schema: public
  user: {dsn.username}
  password: ${{KNOT_OFFLINE_STORE_PASSWORD}}
  sslmode: disable
entity_key_serialization_version: 3
"""
    )
    (path / "sources.py").write_text(POSTGRES_SOURCES)
    return {"online_store_password": REDIS_PASSWORD, "offline_store_password": "unused-by-trust"}


@pytest.fixture(params=["local", "redis-postgres"])
def feature_repo(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureRepo:
    """A fresh repo (unique project) on one of the two configurations."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    path = tmp_path / "repo"
    project = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "local":
        secrets = _local_repo(path, project)
    else:
        secrets = _redis_postgres_repo(
            path,
            project,
            request.getfixturevalue("redis_service"),
            request.getfixturevalue("postgres_database"),
        )
    (path / "definitions.py").write_text(DEFINITIONS)

    def make_block(**overrides: Any) -> FeastFeatureStore:
        return FeastFeatureStore(repo_path=str(path), **{**secrets, **overrides})

    return FeatureRepo(request.param, path, make_block(), make_block)


@pytest.fixture
def local_repo(tmp_path: Path) -> FeatureRepo:
    """A fresh local repo (SQLite online store, file offline store)."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    path = tmp_path / "repo"
    _local_repo(path, f"t{uuid.uuid4().hex[:10]}")
    (path / "definitions.py").write_text(DEFINITIONS)

    def make_block(**overrides: Any) -> FeastFeatureStore:
        return FeastFeatureStore(repo_path=str(path), **overrides)

    return FeatureRepo("local", path, make_block(), make_block)


@pytest.fixture
def redis_postgres_repo(
    tmp_path: Path, redis_service: str, postgres_database: dict[str, str]
) -> FeatureRepo:
    """A fresh repo with a Redis online store and a PostgreSQL offline store."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore

    path = tmp_path / "repo"
    secrets = _redis_postgres_repo(
        path, f"t{uuid.uuid4().hex[:10]}", redis_service, postgres_database
    )
    (path / "definitions.py").write_text(DEFINITIONS)

    def make_block(**overrides: Any) -> FeastFeatureStore:
        return FeastFeatureStore(repo_path=str(path), **{**secrets, **overrides})

    return FeatureRepo("redis-postgres", path, make_block(), make_block)
