"""A reviewer answers a promotion's approval form in the Prefect UI.

The flow, in a process of its own, pauses in ``promote(..., approval=...)``; the
browser opens the paused run, presses Resume, reads the evidence in the form, switches
Approve on, names the reviewer and submits; the run resumes and moves the alias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.services import wait_for
from tests.triggers.conftest import log_and_register, rows, tracking_store
from tests.ui import forms

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["tracking_store"]

pytestmark = pytest.mark.heavy

MODEL = "churn-ui-approval"
TRACKING = "ui-approval-mlflow"
FLOW = Path(__file__).resolve().parent / "approval_flow.py"


@pytest.fixture(scope="module")
def model_to_approve(ui_url: str, tracking_store: Any) -> str:
    """Version 1 of ``MODEL``, no alias yet; its tracking block saved on the UI's server."""
    from sklearn.dummy import DummyClassifier

    assert log_and_register(tracking_store, MODEL, DummyClassifier(), rows(seed=31)) == 1
    tracking_store.save(TRACKING, overwrite=True)
    return MODEL


def paused_run(prefect_server: str) -> Any:
    """The approval flow's run once it is paused on its form."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with SyncPrefectClient(prefect_server) as client:
        for run in client.read_flow_runs(flow_filter=FlowFilter(
                name=FlowFilterName(any_=["knot-test-ui-approval"]))):
            if run.state and run.state.is_paused() and run.state.state_details.run_input_keyset:
                return run
    return None


def test_a_reviewer_approves_a_promotion_in_the_ui(
    ui_url: str, prefect_server: str, model_to_approve: str, tracking_store: Any, page: Page
) -> None:
    process = subprocess.Popen(
        [sys.executable, str(FLOW), model_to_approve, TRACKING],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run = wait_for("a paused promotion", lambda: paused_run(prefect_server),
                       timeout=180, interval=1)
        page.goto(f"{ui_url}/runs/flow-run/{run.id}")
        page.get_by_role("button", name="Resume").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(f"Promote {MODEL} version 1 to @champion?").wait_for()
        assert "x1 PSI 0.31 (error) in 3 monitoring runs" in dialog.inner_text()
        approve = dialog.get_by_role("switch")  # the form's one boolean: approve
        approve.click()
        assert approve.get_attribute("aria-checked") == "true"
        forms.field_after(page, "Reviewer").fill("ana")
        forms.screenshot_page(page, "approval-form.png")
        dialog.get_by_role("button", name="Submit").click()
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]
    line = next(x for x in output.splitlines() if x.startswith("DECISION "))
    assert json.loads(line.removeprefix("DECISION ")) == {
        "decision": "promoted", "approval": "approved by ana"}
    aliases = tracking_store.get_client().get_registered_model(MODEL).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1"}
