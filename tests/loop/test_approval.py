"""promote(..., approval=...) pauses the flow run with a Prefect input form showing the
evidence; approve, reject and no answer, through the real server's API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from knot_prefect.errors import ConfigurationError
from tests.services import wait_for
from tests.triggers.conftest import log_and_register, rows

pytestmark = pytest.mark.heavy

MODEL = "churn-loop-approval"
TRACKING = "loop-approval-mlflow"
HERE = Path(__file__).resolve().parent


def paused_run(server: Any, seen: set[str]) -> Any:
    """The approvals flow run once it is paused on a form not answered yet."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    for run in server.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["knot-test-approvals"]))):
        keyset = run.state.state_details.run_input_keyset if run.state else None
        if run.state.is_paused() and keyset and keyset["response"] not in seen:
            return run
    return None


def stored_input(server: Any, run_id: Any, key: str) -> str | None:
    """A flow run input's stored value, None while it is not written yet."""
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        value: str = server.read_flow_run_input(run_id, key)
    except (ObjectNotFound, PrefectHTTPStatusError) as error:
        if getattr(getattr(error, "response", None), "status_code", 404) != 404:
            raise
        return None
    return value


def answer(server: Any, seen: set[str], run_input: dict[str, Any] | None) -> str:
    """Wait for the next form, answer it (unless ``run_input`` is None); its description."""
    run = wait_for("a paused promotion", lambda: paused_run(server, seen), timeout=120,
                   interval=0.5)
    keyset = run.state.state_details.run_input_keyset
    seen.add(keyset["response"])
    # Prefect writes the form's description just after it pauses the run.
    description: str = json.loads(wait_for(
        "the form's description", lambda: stored_input(server, run.id, keyset["description"]),
        timeout=30, interval=0.5))
    if run_input is not None:
        server.resume_flow_run(run.id, run_input=run_input)
    return description


def test_promotion_waits_for_approval_and_a_rejection_or_no_answer_keeps_the_alias(
    server: Any, prefect_server: str, tracking_store: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    data = rows(seed=21)
    assert log_and_register(tracking_store, MODEL, DummyClassifier(), data) == 1
    assert log_and_register(tracking_store, MODEL, LogisticRegression(), data) == 2
    tracking_store.save(TRACKING, overwrite=True)
    labelled = tmp_path_factory.mktemp("approvals") / "labelled.parquet"
    rows(seed=22).to_parquet(labelled)

    arguments = {"model": MODEL, "tracking": TRACKING, "data_path": str(labelled)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "approvals.py"), json.dumps(arguments)],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen: set[str] = set()
        first = answer(server, seen, {"approve": True, "reviewer": "ana"})
        second = answer(server, seen, {"approve": False, "reviewer": "ben",
                                       "comment": "shadow disagreement too high"})
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]

    # The form shows the evidence: the scores, the reason, the caller's rows.
    assert f"Promote {MODEL} version 1 to @champion?" in first
    assert "shadow agreement | 0.97 over 500 requests" in first
    assert f"Promote {MODEL} version 2 to @champion?" in second
    assert "champion | version 1, accuracy =" in second

    line = next(x for x in output.splitlines() if x.startswith("DECISIONS "))
    decisions = json.loads(line.removeprefix("DECISIONS "))
    assert [d["decision"] for d in decisions] == ["promoted", "not-approved", "not-approved"]
    assert decisions[0]["approval"] == "approved by ana"
    assert decisions[1]["approval"] == "rejected by ben: shadow disagreement too high"
    assert decisions[2]["approval"] == "no answer within 0:00:03"
    # Only the approved move happened.
    aliases = tracking_store.get_client().get_registered_model(MODEL).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1"}


def test_approval_outside_a_flow_run_is_refused_before_anything_moves(
    tracking_store: Any,
) -> None:
    from sklearn.dummy import DummyClassifier

    from knot_prefect.tasks.mlflow_registry import promote

    name = f"{MODEL}-outside"
    version = log_and_register(tracking_store, name, DummyClassifier(), rows(seed=1))
    with pytest.raises(ConfigurationError, match="call promote from a Prefect flow"):
        promote.fn(name, version, "champion", tracking=tracking_store, approval="1m")
    assert tracking_store.get_client().get_registered_model(name).aliases == {}
