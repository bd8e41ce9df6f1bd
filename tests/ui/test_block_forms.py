"""People configure knot blocks in the Prefect UI: fill a block form, load it in Python.

Each test drives Debian's Chromium through the Prefect UI of a real ``prefect server``:
Blocks -> Add Block -> search the catalog -> Create -> fill the form -> Create. The
document is then loaded with ``Block.load`` and used against a real service.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tests.ui import forms

if TYPE_CHECKING:
    from playwright.sync_api import Page

MASK = "********"

# Playwright's sync API runs an event loop in this thread, so Prefect's sync/async
# dispatch is told explicitly to load blocks synchronously (``_sync=True``).


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _secret(kind: str) -> str:
    # Readable in the screenshots, and unique so that finding it in a page means a leak.
    return f"{kind}-visible-only-while-typing-{uuid.uuid4().hex[:6]}"


def _assert_secret_hidden(page: Page, secret: str, screenshot: str | None = None) -> None:
    """The block page and its edit form show the mask, never the value."""
    page.get_by_text(MASK, exact=True).first.wait_for()  # field values render last
    assert secret not in page.content()
    if screenshot:
        forms.screenshot_page(page, screenshot)
    page.goto(page.url + "/edit")
    page.get_by_role("button", name="Save").wait_for()
    page.wait_for_function(
        "mask => Array.from(document.querySelectorAll('textarea, input'))"
        ".some(e => e.value === mask)",
        arg=MASK,
    )
    assert secret not in page.content()
    values = page.eval_on_selector_all("textarea, input", "els => els.map(e => e.value)")
    assert secret not in values
    assert MASK in values


def test_mlflow_tracking_form(ui_url: str, page: Page, tmp_path: Path) -> None:
    from knot_prefect import MLflowTracking

    name, token = _name("churn-mlflow"), _secret("token")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    forms.open_create_form(page, ui_url, "MLflow", "MLflow Tracking")
    forms.fill_block_name(page, name)
    forms.field_after(page, "MLflow tracking URI, e.g.").fill(store)
    forms.field_after(page, "MLflow experiment that runs are logged to").fill("churn-ui")
    forms.field_after(page, "Bearer token sent to the tracking server").fill(token)
    forms.field_after(page, "Tags added to every run").fill('{"team": "risk"}')
    forms.field_after(page, "How many times to try reaching").fill("5")
    forms.screenshot_form(page, "ui-mlflow-tracking-form.png")
    forms.submit(page)
    _assert_secret_hidden(page, token, screenshot="ui-mlflow-tracking-saved.png")

    tracking = MLflowTracking.load(name, _sync=True)
    assert tracking.tracking_uri == store
    assert tracking.experiment_name == "churn-ui"
    assert tracking.token is not None and tracking.token.get_secret_value() == token
    assert tracking.username is None and tracking.password is None
    assert tracking.default_tags == {"team": "risk"}
    assert tracking.connect_attempts == 5
    experiment_id = tracking.get_or_create_experiment_id()  # The loaded block opens its store.
    assert tracking.get_client().get_experiment(experiment_id).name == "churn-ui"


def test_data_contract_form(ui_url: str, page: Page) -> None:
    from knot_prefect import DataContract

    name = _name("orders-contract")
    schema_yaml = (
        "schema_type: dataframe\n"
        "columns:\n"
        "  order_id:\n    dtype: int64\n    nullable: false\n    unique: true\n"
        "  amount:\n    dtype: float64\n    nullable: false\n"
        "    checks:\n      greater_than_or_equal_to: 0\n"
        "  email:\n    dtype: str\n    nullable: true\n"
    )
    forms.open_create_form(page, ui_url, "contract", "Data Contract")
    forms.fill_block_name(page, name)
    forms.field_after(page, "The Pandera DataFrameSchema as YAML").fill(schema_yaml)
    forms.field_after(page, "An optional label put in front").fill("2024-06")
    forms.field_after(page, "Columns whose values are masked").fill('["email"]')
    forms.screenshot_form(page, "ui-data-contract-form.png")
    forms.submit(page)
    assert "2024-06" in page.inner_text("body")

    contract = DataContract.load(name, _sync=True)
    assert contract.schema_yaml == schema_yaml
    assert contract.model is None
    assert contract.sensitive_columns == ["email"]
    assert contract.version.startswith("2024-06+")
    schema = contract.schema()
    assert list(schema.columns) == ["order_id", "amount", "email"]
    good = pd.DataFrame({"order_id": [1, 2], "amount": [3.5, 0.0], "email": ["a@x", None]})
    schema.validate(good)
    bad = good.assign(amount=[-1.0, 2.0])
    try:
        schema.validate(bad)
    except Exception as exc:  # pandera's SchemaError names the failing check
        assert "greater_than_or_equal_to" in str(exc)
    else:
        raise AssertionError("a negative amount passed the contract loaded from the UI")


def test_sql_warehouse_form(
    ui_url: str, page: Page, postgres_database: dict[str, str]
) -> None:
    from knot_prefect import SqlWarehouse

    name, password = _name("analytics"), _secret("password")
    url = postgres_database["url"]  # postgresql+psycopg://postgres@127.0.0.1:PORT/DB
    forms.open_create_form(page, ui_url, "SQL Warehouse", "SQL Warehouse")
    forms.fill_block_name(page, name)
    forms.field_after(page, "SQLAlchemy URL without the password").fill(url)
    forms.field_after(page, "Password of the URL's user").fill(password)
    forms.screenshot_form(page, "ui-sql-warehouse-form.png")
    forms.submit(page)
    _assert_secret_hidden(page, password)

    warehouse = SqlWarehouse.load(name, _sync=True)
    assert warehouse.url == url
    assert warehouse.password is not None
    assert warehouse.password.get_secret_value() == password
    assert warehouse.fast_path is True
    assert password not in repr(warehouse)
    frame = pd.DataFrame({"customer_id": [1, 2, 3], "score": [0.1, 0.5, 0.9]})
    assert warehouse.write(frame, "scores").rows == 3
    back = warehouse.read("select customer_id, score from scores order by customer_id")
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
