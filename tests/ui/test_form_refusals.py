"""Invalid values saved through the Prefect UI's block form are refused where knot loads them.

Field constraints live in each block's JSON schema (patterns, minimums), so Prefect's own
schema validation (``/api/ui/schemas/validate``, which the UI calls) refuses a URL with a
password in it, a memory amount written ``8GB`` or an unknown GPU kind. Prefect's
default UI saves a block form without that validation, so ``Block.load`` refuses the
saved document with a message that names the field and never the value; what a schema
cannot express (a contract naming an unknown check) is refused the same way.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui import forms

if TYPE_CHECKING:
    from playwright.sync_api import Page

CANARY = f"canary-{uuid.uuid4().hex[:10]}"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _schema_errors(ui_url: str, cls: Any, values: dict[str, Any]) -> list[str]:
    """Fields that the server's schema validation (as the UI calls it) refuses."""
    import httpx
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug(cls.get_block_type_slug())
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
    assert schema is not None
    response = httpx.post(
        f"{ui_url}/api/ui/schemas/validate",
        json={"schema": schema.fields, "values": values},
        timeout=30,
    )
    response.raise_for_status()
    return [error["property"] for error in response.json()["errors"]]


def _save_through_form(
    page: Page, ui_url: str, search: str, title: str, label: str, value: str, prefix: str
) -> str:
    """Create a block document in the UI's form with ``value`` in the field after ``label``."""
    name = _name(prefix)
    forms.open_create_form(page, ui_url, search, title)
    forms.fill_block_name(page, name)
    forms.field_after(page, label).fill(value)
    forms.submit(page)
    return name


def _refused_on_load(cls: Any, name: str, field: str) -> str:
    from knot_prefect.blocks.base import InvalidBlockDocumentError

    with pytest.raises(InvalidBlockDocumentError) as caught:
        cls.load(name, _sync=True)
    message = str(caught.value)
    assert CANARY not in message + repr(caught.value)
    assert f"Block document {name!r}" in message and f"field '{field}'" in message
    return message


def test_sql_warehouse_with_a_password_in_its_url(ui_url: str, page: Page) -> None:
    from knot_prefect import SqlWarehouse

    url = f"postgresql+psycopg://db.internal/warehouse?user=analyst&password={CANARY}"
    assert _schema_errors(ui_url, SqlWarehouse, {"url": url}) == ["url"]
    name = _save_through_form(page, ui_url, "SQL Warehouse", "SQL Warehouse",
                              "SQLAlchemy URL without the password", url, "pw-in-url")
    message = _refused_on_load(SqlWarehouse, name, "url")
    assert "put it in the password field" in message


def test_mlflow_tracking_with_credentials_in_its_uri(ui_url: str, page: Page) -> None:
    from knot_prefect import MLflowTracking

    uri = f"http://alice:{CANARY}@mlflow.internal:5000"
    assert _schema_errors(ui_url, MLflowTracking, {"tracking_uri": uri}) == ["tracking_uri"]
    name = _save_through_form(page, ui_url, "MLflow", "MLflow Tracking",
                              "MLflow tracking URI, e.g.", uri, "creds-in-uri")
    _refused_on_load(MLflowTracking, name, "tracking_uri")


@pytest.mark.parametrize(
    ("field", "description", "value"),
    [
        ("memory", "Memory for the flow run as a whole number", "8GB"),
        ("gpu_kind", "GPU model in knot's naming", "h100"),
    ],
)
def test_compute_profile_values_that_do_not_load(
    ui_url: str, page: Page, field: str, description: str, value: str
) -> None:
    from knot_prefect import ComputeProfile

    assert _schema_errors(ui_url, ComputeProfile, {field: value}) == [field]
    assert _schema_errors(ui_url, ComputeProfile, {"memory": "8Gi", "gpu_kind": "nvidia-l4"}) == []
    name = _save_through_form(page, ui_url, "Compute Profile", "Compute Profile",
                              description, value, "profile")
    _refused_on_load(ComputeProfile, name, field)


def test_a_contract_with_an_unknown_check(ui_url: str, page: Page) -> None:
    from knot_prefect import DataContract

    name = _save_through_form(
        page, ui_url, "contract", "Data Contract", "The Pandera DataFrameSchema as YAML",
        "columns:\n  amount:\n    dtype: float64\n    checks:\n      no_such_check: 1\n",
        "bad-contract",
    )
    message = _refused_on_load(DataContract, name, "(document)")
    assert "schema_yaml" in message and "no_such_check" in message and "line 5" in message
