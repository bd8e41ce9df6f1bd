"""Retraining on drift with hysteresis, on a real Prefect server and process worker.

A deployment made by ``knot deploy --on-drift MODEL@champion --consecutive 3 --cooldown``
waits for the model's drift: one drifted monitoring run starts nothing, the third
starts exactly one run, which the worker runs with the model's name. The trigger then
pauses itself; drift meanwhile starts nothing, and the cool-down after the run's end
resumes it (Prefect's own action events show when).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from knot_prefect.monitoring.drift import ColumnDrift
from knot_prefect.monitoring.events import drift_event, emit_drift_event
from tests.loop.conftest import POOL, Monitored, read_events
from tests.services import wait_for

pytestmark = pytest.mark.heavy

MODEL = "churn-loop-retrain"
HERE = Path(__file__).resolve().parent
AUTOMATION = f"retrain-on-drift: {MODEL}@champion drifted"
# Long enough for the trigger service to have seen an event, were it to act on it.
SETTLE_SECONDS = 4
COOLDOWN_SECONDS = 20


def runs_of(server: Any, deployment_id: UUID) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    runs: list[Any] = server.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return runs


@pytest.fixture(scope="module")
def deployment(server: Any, worker: Path, monitored: Monitored,
               tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from knot_prefect.cli.main import app

    out_dir = tmp_path_factory.mktemp("retrained")
    result = CliRunner().invoke(app, [
        "deploy", f"{HERE / 'retraining_flow.py'}:record_retraining", "--pool", POOL,
        "--name", "retrain-on-drift", "--on-drift", f"{MODEL}@champion",
        "--consecutive", "3", "--within", "30m", "--cooldown", f"{COOLDOWN_SECONDS}s",
        "--param", f"out_dir={out_dir}",
    ])
    assert result.exit_code == 0, result.output
    assert (f"runs after 3 drifted monitoring run(s) of {MODEL}@champion within 30m "
            f"(severity warning or worse), then pauses for {COOLDOWN_SECONDS}s") in result.output
    found = server.read_deployment_by_name("knot-record-retraining/retrain-on-drift")
    return {"id": found.id, "out_dir": out_dir}


def automation(server: Any) -> Any:
    [found] = server.read_automations_by_name(AUTOMATION)
    return found


def test_a_cooldown_prefect_cannot_time_is_refused_before_deploying(server: Any) -> None:
    from knot_prefect.cli.main import app

    result = CliRunner().invoke(app, [
        "deploy", f"{HERE / 'retraining_flow.py'}:record_retraining", "--pool", POOL,
        "--name", "too-short", "--on-drift", f"{MODEL}@champion", "--cooldown", "5s",
    ])
    assert result.exit_code == 1
    assert "cooldown '5s' is shorter than 10s" in result.output
    assert "Successfully created" not in result.output


def test_the_trigger_counts_drifted_runs_of_the_alias(
    server: Any, deployment: dict[str, Any]
) -> None:
    trigger = automation(server).trigger
    assert trigger.expect == {"knot.drift.detected"}
    assert trigger.threshold == 3 and trigger.within.total_seconds() == 1800
    assert trigger.match.root["knot.model.alias"] == "champion"
    assert [a.type for a in automation(server).actions] == ["run-deployment",
                                                             "pause-automation"]


def test_three_drifted_runs_retrain_once_then_the_trigger_cools_down(
    server: Any, deployment: dict[str, Any], monitored: Monitored, worker: Path
) -> None:
    monitored.score_rows(x1_shift=2.0)
    assert monitored.monitor().is_failed()  # drifted
    time.sleep(SETTLE_SECONDS)
    assert runs_of(server, deployment["id"]) == []  # one noisy run starts nothing

    assert monitored.monitor().is_failed()
    assert monitored.monitor().is_failed()
    [run] = wait_for("the retraining run", lambda: [
        r for r in runs_of(server, deployment["id"])
        if r.state and r.state.is_final()], timeout=120)
    log = worker.read_text(errors="replace")[-3000:]
    assert run.state.is_completed(), f"{run.state!r}\n{log}"
    assert run.created_by is not None and run.created_by.type == "AUTOMATION"
    assert run.created_by.display_value == AUTOMATION
    assert run.parameters["model_name"] == MODEL
    assert (deployment["out_dir"] / f"{run.id}.json").exists()

    # Fired, the trigger paused itself (Prefect's actions run apart from the run) ...
    paused = wait_for("the trigger's pause",
                      lambda: executed(server, automation(server).id, "pause-automation"))
    drift = [ColumnDrift("x1", 5.0, 0.9, 0.0, 120)]
    for _ in range(3):
        emit_drift_event(drift_event(MODEL, "champion", monitored.version, drift, 0.1, 0.25))
    emitted = datetime.now(UTC)
    # ... and the cool-down automation resumed it once the cool-down after the run's end
    # had passed, after that drift: which started nothing.
    [cooldown] = [a for a in server.read_resource_related_automations(
        f"prefect.deployment.{deployment['id']}") if a.name == f"{AUTOMATION}: cool-down"]
    [resumed] = wait_for("the trigger's resumption",
                         lambda: executed(server, cooldown.id, "resume-automation"),
                         timeout=120)
    resumed_at = datetime.fromisoformat(resumed["occurred"])
    assert resumed_at - run.state.timestamp >= timedelta(seconds=COOLDOWN_SECONDS)
    assert datetime.fromisoformat(paused[0]["occurred"]) < emitted < resumed_at
    assert automation(server).enabled
    time.sleep(SETTLE_SECONDS)
    assert [r.id for r in runs_of(server, deployment["id"])] == [run.id]


def executed(server: Any, automation_id: UUID, action: str) -> list[dict[str, Any]]:
    """The executions of the automation's ``action`` (Prefect's own events)."""
    events = read_events(server, "prefect.automation.action.executed",
                         f"prefect.automation.{automation_id}")
    return [event for event in events if event["payload"]["action_type"] == action]
