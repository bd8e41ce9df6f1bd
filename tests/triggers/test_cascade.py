"""A promotion triggers deployments on a real Prefect server with a real process worker.

Two deployments wait for ``churn-triggers@champion`` to move: batch inference deployed
with ``knot deploy --on-promotion`` (it re-scores the warehouse rows), and a light flow
deployed with ``deploy_flow(on_promotion=...)`` whose parameters include the version.
The real ``promote`` task runs in a process of its own against the server: another
model's promotion, another alias's promotion and a promotion that moves nothing come
first and must not trigger; then the champion moves, and both deployments run once,
created by their automations, picked up by the worker, with the promoted version.
A rollback moves the champion back and runs them again with the earlier version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from knot_prefect.deploy import deploy_flow
from tests.services import wait_for
from tests.triggers.conftest import (
    MODEL,
    OTHER_MODEL,
    POOL,
    ROWS,
    TRACKING,
    WAREHOUSE,
    Models,
)

pytestmark = pytest.mark.heavy

HERE = Path(__file__).resolve().parent
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
OUTPUT_TABLE = "scores_on_promotion"


def run_promotions(prefect_server: str, models: Models, steps: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Run ``promote``/``rollback`` steps in a flow of a process of its own."""
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    arguments = {"steps": steps, "tracking": TRACKING, "data_path": str(models.labelled)}
    completed = subprocess.run(
        [sys.executable, str(HERE / "promotions.py"), json.dumps(arguments)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    line = next(x for x in completed.stdout.splitlines() if x.startswith("OUTCOMES "))
    outcomes: list[dict[str, Any]] = json.loads(line.removeprefix("OUTCOMES "))
    return outcomes


def flow_runs(server: Any, deployment_id: UUID) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    runs: list[Any] = server.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
    )
    return runs


def finished_runs(server: Any, deployment_id: UUID, count: int) -> list[Any]:
    """Wait until the deployment has ``count`` flow runs, all in a final state."""
    def probe() -> list[Any] | None:
        runs = flow_runs(server, deployment_id)
        done = len(runs) >= count and all(r.state and r.state.type.value in FINAL for r in runs)
        return runs if done else None

    return wait_for(f"{count} finished flow run(s) of deployment {deployment_id}", probe)


def knot_events(server: Any, event: str) -> list[dict[str, Any]]:
    response = server.request("POST", "/events/filter", json={
        "filter": {
            "event": {"name": [event]},
            "resource": {"id_prefix": ["knot.mlflow.registered-model.churn-triggers"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    })
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def scores(models: Models) -> Any:
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(path=str(models.warehouse_path)).read(
        f"select * from {OUTPUT_TABLE} order by customer_id")


def assert_triggered(run: Any, worker_log: Path, automation_name: str) -> None:
    log_tail = worker_log.read_text(errors="replace")[-4000:]
    assert run.state.is_completed(), f"{run.state!r}\nworker log:\n{log_tail}"
    # Created by the deployment's automation, run by the worker in a process of its own.
    assert run.created_by is not None and run.created_by.type == "AUTOMATION"
    assert run.created_by.display_value == automation_name
    assert run.work_pool_name == POOL
    assert run.infrastructure_pid
    assert str(run.id) in worker_log.read_text(errors="replace")


@pytest.fixture(scope="module")
def deployments(server: Any, models: Models, worker: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both deployments, created through the CLI and through ``deploy_flow``."""
    from knot_prefect.cli.main import app

    result = CliRunner().invoke(app, [
        "deploy", "batch_inference_flow", "--pool", POOL, "--name", "rescore-on-promotion",
        "--on-promotion", f"{MODEL}@champion",
        "--param", f"warehouse={WAREHOUSE}", "--param", f"tracking={TRACKING}",
        "--param", "contract=null", "--param", "feature_source=warehouse",
        "--param", "entity_sql=select customer_id, x1, x2 from scoring_rows",
        "--param", f"output_table={OUTPUT_TABLE}",
    ])
    assert result.exit_code == 0, result.output
    assert f"runs when {MODEL}@champion moves" in result.output
    scoring = server.read_deployment_by_name("knot-batch-inference/rescore-on-promotion")

    out_dir = tmp_path_factory.mktemp("recorded")
    recorder_id = deploy_flow(
        f"{HERE / 'promoted_flow.py'}:record_promotion", pool=POOL, name="record",
        parameters={"out_dir": str(out_dir)}, on_promotion=[f"{MODEL}@champion"],
    )
    yield {"scoring": scoring.id, "recorder": recorder_id, "out_dir": out_dir}


@pytest.fixture(scope="module")
def cascade(prefect_server: str, server: Any, models: Models, deployments: dict[str, Any]
            ) -> dict[str, Any]:
    """Promotions that must not trigger, then the one that must; returns the outcomes."""
    outcomes = run_promotions(prefect_server, models, [
        {"model": OTHER_MODEL, "version": 1, "alias": "champion"},  # another model
        {"model": MODEL, "version": 2, "alias": "challenger"},  # another alias
        {"model": MODEL, "version": 1, "alias": "champion"},  # moves nothing
        {"model": MODEL, "version": 2, "alias": "champion"},  # the champion changes
    ])
    return {"outcomes": outcomes,
            "scoring": finished_runs(server, deployments["scoring"], 1),
            "recorder": finished_runs(server, deployments["recorder"], 1)}


def test_deployments_carry_the_promotion_trigger(
    server: Any, deployments: dict[str, Any]
) -> None:
    automations = server.read_resource_related_automations(
        f"prefect.deployment.{deployments['scoring']}")
    assert [a.name for a in automations] == [f"rescore-on-promotion: {MODEL}@champion moved"]
    trigger = automations[0].trigger
    assert trigger.expect == {"knot.model.promoted", "knot.model.rolled-back"}
    assert trigger.match.root == {
        "prefect.resource.id": f"knot.mlflow.registered-model.{MODEL}",
        "knot.model.alias": "champion",
    }
    # batch_inference_flow has model_name and alias parameters, no model_version.
    assert automations[0].actions[0].parameters == {
        "model_name": "{{ event.payload.name }}", "alias": "{{ event.payload.alias }}",
    }


def test_promotion_runs_batch_inference_with_the_promoted_version(
    cascade: dict[str, Any], models: Models, worker: Path
) -> None:
    assert [o["decision"] for o in cascade["outcomes"]] == [
        "promoted", "promoted", "already-holder", "promoted"]
    [run] = cascade["scoring"]
    assert_triggered(run, worker, f"rescore-on-promotion: {MODEL}@champion moved")
    assert run.parameters["model_name"] == MODEL
    assert run.parameters["alias"] == "champion"
    # Every row was re-scored by this run with version 2, the new champion.
    table = scores(models)
    assert len(table) == ROWS
    assert set(table["model_version"].astype(str)) == {"2"}
    assert set(table["flow_run_id"]) == {str(run.id)}


def test_promotion_passes_name_alias_and_version_into_the_flow(
    cascade: dict[str, Any], deployments: dict[str, Any], worker: Path
) -> None:
    [run] = cascade["recorder"]
    assert_triggered(run, worker, f"record: {MODEL}@champion moved")
    expected = {"model_name": MODEL, "alias": "champion", "model_version": 2}
    assert {k: run.parameters[k] for k in expected} == expected
    written = json.loads((deployments["out_dir"] / f"{run.id}.json").read_text())
    assert written == expected  # an int version, as the flow's parameter says


def test_other_models_aliases_and_no_op_promotions_do_not_trigger(
    server: Any, cascade: dict[str, Any], deployments: dict[str, Any]
) -> None:
    # The server received every event that was emitted: one per alias that moved...
    events = wait_for("3 knot.model.promoted events", lambda: (
        found if len(found := knot_events(server, "knot.model.promoted")) >= 3 else None
    ), timeout=60)
    moved = sorted((e["resource"]["knot.model.name"], e["resource"]["knot.model.alias"],
                    e["payload"]["version"]) for e in events)
    assert moved == [(MODEL, "challenger", 2), (MODEL, "champion", 2),
                     (OTHER_MODEL, "champion", 1)]
    champion = next(e for e in events if e["resource"].get("knot.model.alias") == "champion"
                    and e["resource"]["knot.model.name"] == MODEL)
    assert champion["payload"]["previous_version"] == 1
    assert champion["payload"]["model_uri"] == f"models:/{MODEL}/2"
    # ...none for the promotion that moved nothing, and only the champion's triggered.
    for deployment in ("scoring", "recorder"):
        assert len(flow_runs(server, deployments[deployment])) == 1


def test_rollback_runs_the_deployments_again_with_the_earlier_version(
    prefect_server: str, server: Any, models: Models, cascade: dict[str, Any],
    deployments: dict[str, Any], worker: Path,
) -> None:
    outcomes = run_promotions(prefect_server, models,
                              [{"model": MODEL, "alias": "champion", "rollback": True}])
    assert outcomes == [{"rolled_back_to": 1}]
    recorder = finished_runs(server, deployments["recorder"], 2)
    scoring = finished_runs(server, deployments["scoring"], 2)
    assert len(recorder) == len(scoring) == 2
    assert recorder[-1].parameters["model_version"] == 1
    assert_triggered(scoring[-1], worker, f"rescore-on-promotion: {MODEL}@champion moved")
    table = scores(models)
    assert set(table["model_version"].astype(str)) == {"1"}
    assert set(table["flow_run_id"]) == {str(scoring[-1].id)}
