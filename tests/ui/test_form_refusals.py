"""What the Prefect UI can save, knot can load: invalid values are refused in the form.

Field constraints live in each block's JSON schema (patterns, minimums), so the UI's own
validation refuses a URL with a password in it, a memory amount written ``8GB`` or an
unknown GPU kind, shows why, and saves nothing. What a schema cannot express (a contract
whose YAML names an unknown check) is refused by ``Block.load`` naming the field.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.ui import forms

if TYPE_CHECKING:
    from playwright.sync_api import Page

CANARY = f"canary-{uuid.uuid4().hex[:10]}"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _assert_refused(page: Page, name: str, slug: str, screenshot: str) -> None:
    """Create stays on the form with an error under the field, and nothing is saved."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    page.get_by_role("button", name="Create", exact=True).click()
    page.locator(".p-message--error, .p-label__message--invalid, [class*='invalid']").first \
        .wait_for()
    page.wait_for_timeout(1500)  # a save, had it happened, would navigate away by now
    assert "/create" in page.url
    forms.screenshot_form(page, screenshot)
    assert CANARY not in page.inner_text("body")
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_block_document_by_name(name, block_type_slug=slug)


def test_sql_warehouse_form_refuses_a_password_in_the_url(ui_url: str, page: Page) -> None:
    name = _name("pw-in-url")
    forms.open_create_form(page, ui_url, "SQL Warehouse", "SQL Warehouse")
    forms.fill_block_name(page, name)
    forms.field_after(page, "SQLAlchemy URL without the password").fill(
        f"postgresql+psycopg://db.internal/warehouse?user=analyst&password={CANARY}"
    )
    _assert_refused(page, name, "sql-warehouse", "ui-sql-warehouse-refused.png")


def test_mlflow_form_refuses_credentials_in_the_tracking_uri(ui_url: str, page: Page) -> None:
    name = _name("creds-in-uri")
    forms.open_create_form(page, ui_url, "MLflow", "MLflow Tracking")
    forms.fill_block_name(page, name)
    forms.field_after(page, "MLflow tracking URI, e.g.").fill(
        f"http://alice:{CANARY}@mlflow.internal:5000"
    )
    _assert_refused(page, name, "mlflow-tracking", "ui-mlflow-tracking-refused.png")


@pytest.mark.parametrize(
    ("description", "value"),
    [("Memory for the flow run as a whole number", "8GB"), ("GPU model in knot's naming", "h100")],
)
def test_compute_profile_form_refuses_what_load_would(
    ui_url: str, page: Page, description: str, value: str
) -> None:
    name = _name("profile")
    forms.open_create_form(page, ui_url, "Compute Profile", "Compute Profile")
    forms.fill_block_name(page, name)
    forms.field_after(page, "Number of GPUs for the flow run").fill("1")
    forms.field_after(page, description).fill(value)
    _assert_refused(page, name, "compute-profile", f"ui-compute-profile-refused-{value}.png")


def test_a_contract_with_an_unknown_check_is_refused_on_load_naming_the_field(
    ui_url: str, page: Page
) -> None:
    from knot_prefect import DataContract
    from knot_prefect.blocks.base import InvalidBlockDocumentError

    name = _name("bad-contract")
    forms.open_create_form(page, ui_url, "contract", "Data Contract")
    forms.fill_block_name(page, name)
    forms.field_after(page, "The Pandera DataFrameSchema as YAML").fill(
        "columns:\n  amount:\n    dtype: float64\n    checks:\n      no_such_check: 1\n"
    )
    forms.submit(page)
    with pytest.raises(InvalidBlockDocumentError) as caught:
        DataContract.load(name, _sync=True)
    message = str(caught.value)
    assert f"Block document {name!r}" in message
    assert "schema_yaml" in message and "no_such_check" in message and "line 5" in message
