"""monitoring_flow emits ``knot.drift.detected`` on a real Prefect server: one event per
drifted run, about the model and alias, naming the drifted feature; none without drift."""

from __future__ import annotations

from typing import Any

from knot_prefect.tracking.aliases import model_resource_id
from tests.loop.conftest import Monitored, read_events
from tests.services import wait_for

MODEL = "churn-loop-events"


def test_a_drifted_run_emits_one_drift_event_and_a_clean_run_none(
    server: Any, monitored: Monitored
) -> None:
    resource = model_resource_id(MODEL)
    monitored.score_rows(x1_shift=0.0)
    clean = monitored.monitor()
    assert clean.is_completed(), clean
    monitored.score_rows(x1_shift=2.0)
    drifted = monitored.monitor()
    assert drifted.is_failed()  # error-level drift stops the run, after the event

    [event] = wait_for("the knot.drift.detected event",
                       lambda: read_events(server, "knot.drift.detected", resource),
                       timeout=30, interval=0.5)
    payload = event["payload"]
    assert {k: payload[k] for k in ("model", "alias", "version", "feature", "statistic",
                                    "severity")} == {
        "model": MODEL, "alias": "champion", "version": monitored.version,
        "feature": "x1", "statistic": "psi", "severity": "error"}
    assert payload["value"] > 0.25
    assert list(payload["features"]) == ["x1"]  # x2 did not move
    assert event["resource"]["knot.model.alias"] == "champion"
    assert event["resource"]["knot.drift.severity"] == "error"
    # The event points at the monitoring run that found the drift.
    related = {r["prefect.resource.id"] for r in event["related"]}
    assert f"prefect.flow-run.{drifted.state_details.flow_run_id}" in related

    # The failed error check of the drifted column is an event of its own.
    failed = wait_for("the knot.check.failed event", lambda: read_events(
        server, "knot.check.failed", f"knot.check.drift-{MODEL}-x1-error"),
        timeout=30, interval=0.5)
    assert [e["payload"]["status"] for e in failed] == ["failed"]
