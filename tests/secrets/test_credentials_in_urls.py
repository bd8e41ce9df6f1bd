"""Credentials have one home, a secret field: URL-like fields refuse them, messages mask them.

Each refusal names the field and the secret field to use instead, and never echoes the
value: not in the error, not in its repr. Documents saved around the check (through the
API, or by an older version) are refused by ``Block.load`` the same way.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from knot_prefect import FeastFeatureStore, MLflowTracking, SqlWarehouse
from knot_prefect.blocks.base import InvalidBlockDocumentError
from knot_prefect.urls import NO_CREDENTIALS_PATTERN, mask_url, mask_urls

CANARY = "canary-" + uuid.uuid4().hex[:10]


def _refusal(cls: type, **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        cls(**fields)
    text = f"{caught.value}\n{caught.value!r}"
    assert CANARY not in text
    return str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://db.internal/warehouse?password={CANARY}",
        f"postgresql+psycopg://db.internal/warehouse?user=analyst&password={CANARY}",
        f"postgresql+psycopg://db.internal/warehouse?sslmode=require&sslpassword={CANARY}",
        f"postgresql+psycopg://analyst:{CANARY}@db.internal/warehouse",
        f"mysql+pymysql://db.internal/sales?passwd={CANARY}",
    ],
)
def test_sql_warehouse_refuses_credentials_in_its_url(url: str) -> None:
    message = _refusal(SqlWarehouse, url=url)
    assert "url holds" in message and "put it in the password field" in message


def test_sql_warehouse_keeps_urls_without_credentials() -> None:
    url = "postgresql+psycopg://analyst@db.internal:5432/warehouse?sslmode=require"
    warehouse = SqlWarehouse(url=url, password=SecretStr(CANARY))
    assert warehouse.url == url
    assert CANARY not in repr(warehouse) + str(warehouse) + warehouse.describe()


@pytest.mark.parametrize("field", ["tracking_uri", "registry_uri", "artifact_location"])
@pytest.mark.parametrize(
    "uri",
    [
        f"http://alice:{CANARY}@mlflow.internal:5000",
        f"https://mlflow.internal/?token={CANARY}",
        f"s3://artifacts/path?X-Amz-Signature={CANARY}",
    ],
)
def test_mlflow_tracking_refuses_credentials_in_its_uris(field: str, uri: str) -> None:
    message = _refusal(MLflowTracking, **{field: uri})
    assert f"{field} holds" in message and "token (or username/password) field" in message


@pytest.mark.parametrize(
    "yaml_text",
    [
        "project: p\nonline_store:\n  type: redis\n"
        f"  connection_string: 'redis.internal:6379,password={CANARY}'\n",
        f"project: p\noffline_store:\n  type: postgres\n  password: {CANARY}\n",
        f"project: p\nregistry:\n  path: postgresql://feast:{CANARY}@db/registry\n",
    ],
)
def test_feast_store_refuses_credentials_in_its_yaml(yaml_text: str) -> None:
    message = _refusal(FeastFeatureStore, feature_store_yaml=yaml_text)
    assert "feature_store_yaml holds" in message
    assert "online_store_password, offline_store_password or secrets" in message


def test_feast_store_accepts_references_to_its_secret_fields() -> None:
    text = (
        "project: p\nonline_store:\n  type: redis\n"
        "  connection_string: 'redis:6379,password=${KNOT_ONLINE_STORE_PASSWORD}'\n"
        "offline_store:\n  type: postgres\n  password: ${KNOT_OFFLINE_STORE_PASSWORD}\n"
    )
    store = FeastFeatureStore(feature_store_yaml=text, online_store_password=SecretStr(CANARY))
    assert store.feature_store_yaml == text


def test_feast_yaml_that_does_not_parse_is_refused_with_its_line() -> None:
    message = _refusal(FeastFeatureStore, feature_store_yaml="project: p\nonline_store: [\n")
    assert "feature_store_yaml does not parse at line 3" in message


def test_the_json_schema_pattern_refuses_what_the_validators_refuse() -> None:
    for url in (
        f"postgresql://db/w?password={CANARY}",
        f"http://alice:{CANARY}@mlflow:5000",
        f"https://mlflow/?Token={CANARY}",
        f"postgresql://db/w?user=a&pwd={CANARY}",
    ):
        assert re.search(NO_CREDENTIALS_PATTERN, url) is None, url
    for url in ("postgresql+psycopg://analyst@db:5432/w?sslmode=require", "sqlite:///x.db", ""):
        assert re.search(NO_CREDENTIALS_PATTERN, url) is not None, url
    for cls, field in ((SqlWarehouse, "url"), (MLflowTracking, "tracking_uri")):
        schema = cls.model_json_schema()["properties"][field]
        assert schema["pattern"] == NO_CREDENTIALS_PATTERN


def test_masking_covers_user_info_and_query_strings() -> None:
    assert mask_url(f"postgresql://bob:{CANARY}@db/w?password={CANARY}&x=1") == (
        "postgresql://bob:***@db/w?password=***&x=1"
    )
    text = f"connection to http://u:{CANARY}@h:1/api failed; see https://h/?token={CANARY}"
    assert CANARY not in mask_urls(text)
    tracking = MLflowTracking(tracking_uri="http://mlflow.internal:5000")
    assert CANARY not in tracking.redact(f"server said: redirect to http://x:{CANARY}@y/")


@pytest.mark.parametrize(
    ("cls", "data", "secret_field"),
    [
        (SqlWarehouse, {"url": f"postgresql://db/w?password={CANARY}"}, "password"),
        (MLflowTracking, {"tracking_uri": f"http://alice:{CANARY}@mlflow:5000"}, "token"),
    ],
)
def test_block_load_refuses_documents_saved_with_credentials(
    cls: Any, data: dict[str, Any], secret_field: str
) -> None:
    """A document written straight through the API (or by an older version) is refused."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentCreate

    cls.register_type_and_schema()
    name = f"stored-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug(cls.get_block_type_slug())
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None
        client.create_block_document(
            BlockDocumentCreate(
                name=name,
                data=data,
                block_type_id=block_type.id,
                block_schema_id=schema.id,
            )
        )
    with pytest.raises(InvalidBlockDocumentError) as caught:
        cls.load(name)
    message = f"{caught.value}\n{caught.value!r}"
    assert CANARY not in message
    assert f"Block document {name!r}" in message and f"put it in the {secret_field}" in message
