"""The whole loop on a real Prefect server, process worker and MLflow store.

Drifted scoring for two monitoring runs -> the drift trigger's retraining run (by the
worker) names a new version ``challenger`` -> the serving service shadows it -> its
promotion, with the shadow comparison as evidence, waits for and gets approval -> the
new champion fails its watched monitoring run and is rolled back. Each step is read
back from Prefect as runs, events and artifacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from knot_prefect.tracking.aliases import alias_holder, model_resource_id
from tests.loop.conftest import (
    POOL,
    TRACKING,
    WAREHOUSE,
    Monitored,
    read_events,
)
from tests.loop.loop_flows import labelled_rows
from tests.loop.test_approval import stored_input
from tests.loop.test_retrain_on_drift import runs_of
from tests.services import wait_for

pytestmark = pytest.mark.heavy

MODEL = "churn-whole-loop"
HERE = Path(__file__).resolve().parent


def paused_promotion(server: Any) -> Any:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    for run in server.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["knot-loop-promotion"]))):
        if run.state.is_paused() and run.state.state_details.run_input_keyset:
            return run
    return None


def artifact_keys(server: Any, run_id: Any) -> set[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return {a.key for a in server.read_artifacts(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=[run_id])))}


def test_drift_retrains_shadows_promotes_on_approval_and_rolls_a_bad_champion_back(
    server: Any, prefect_server: str, worker: Path, monitored: Monitored,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from knot_prefect.cli.main import app
    from knot_prefect.flows import monitoring_flow
    from knot_prefect.serving import ServeSettings
    from knot_prefect.serving.service import PredictionService

    # The retraining deployment waits for two drifted monitoring runs of the champion.
    deployed = CliRunner().invoke(app, [
        "deploy", f"{HERE / 'loop_flows.py'}:retrain", "--pool", POOL, "--name", "loop",
        "--on-drift", f"{MODEL}@champion", "--consecutive", "2", "--within", "30m",
        "--param", f"tracking={TRACKING}", "--param", "seed=11"])
    assert deployed.exit_code == 0, deployed.output
    deployment = server.read_deployment_by_name("knot-loop-retrain/loop")

    # 1. Drifted scoring: two monitoring runs find drift and fail.
    monitored.score_rows(x1_shift=2.0)
    assert monitored.monitor().is_failed()
    assert monitored.monitor().is_failed()
    assert len(read_events(server, "knot.drift.detected", model_resource_id(MODEL))) >= 1

    # 2. Retraining, started by the automation and run by the worker.
    [retraining] = wait_for("the retraining run", lambda: [
        r for r in runs_of(server, deployment.id) if r.state and r.state.is_final()],
        timeout=180)
    log = worker.read_text(errors="replace")[-3000:]
    assert retraining.state.is_completed(), f"{retraining.state!r}\n{log}"
    assert retraining.created_by is not None and retraining.created_by.type == "AUTOMATION"
    client = monitored.tracking.get_client()
    challenger = alias_holder(client, MODEL, "challenger")
    assert challenger is not None and challenger != monitored.version

    # 3. The serving service answers with the champion and shadows the challenger.
    served = PredictionService.from_settings(ServeSettings(
        model=f"{MODEL}@champion", source="scoring_rows", warehouse=WAREHOUSE,
        key_columns=["customer_id"], tracking=monitored.tracking.tracking_uri,
        shadow="challenger", shadow_table="shadow_scores", refresh=3600))
    served.start()
    try:
        answers = [served.predict([{"customer_id": c}]) for c in range(1, 21)]
        assert served.shadow is not None and served.shadow.drain(timeout=120)
    finally:
        served.stop()
    assert {a["model"]["version"] for a in answers} == {monitored.version}

    # 4. The promotion shows the shadow evidence and waits for approval.
    labelled = tmp_path_factory.mktemp("whole-loop") / "labelled.parquet"
    labelled_rows(seed=12).to_parquet(labelled)
    arguments = {"model_name": MODEL, "version": challenger, "tracking": TRACKING,
                 "warehouse": WAREHOUSE, "data_path": str(labelled)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "loop_flows.py"), json.dumps(arguments)],
        env={**os.environ, "PREFECT_API_URL": prefect_server},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        paused = wait_for("the paused promotion", lambda: paused_promotion(server),
                          timeout=180, interval=0.5)
        keyset = paused.state.state_details.run_input_keyset
        form = json.loads(wait_for("the form", lambda: stored_input(
            server, paused.id, keyset["description"]), timeout=30, interval=0.5))
        assert "shadow requests | 20" in form
        server.resume_flow_run(paused.id, run_input={"approve": True, "reviewer": "ana"})
        output, _ = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]
    decision = json.loads(next(line for line in output.splitlines()
                               if line.startswith("DECISION ")).removeprefix("DECISION "))
    assert decision["decision"] == "promoted" and "approved by ana" in decision["reason"]
    assert alias_holder(client, MODEL, "champion") == challenger
    assert {"shadow-" + MODEL.lower(), "model-promotion"} <= artifact_keys(server, paused.id)

    # 5. The new champion fails its watched monitoring run and is rolled back.
    predictions = monitored.warehouse.read_table("predictions")
    monitored.warehouse.write(predictions.assign(model_version=challenger), "predictions",
                              mode="append")
    watched = monitoring_flow(
        model_name=MODEL, predictions_table="predictions", key_columns=["customer_id"],
        entity_sql="select * from scoring_rows", warehouse=WAREHOUSE, tracking=TRACKING,
        rollback_within="1h", return_state=True)
    assert watched.is_failed()
    assert alias_holder(client, MODEL, "champion") == monitored.version
    [rolled_back] = wait_for("the rollback event", lambda: read_events(
        server, "knot.model.rolled-back", model_resource_id(MODEL)), timeout=30)
    assert "within 1:00:00 of its promotion" in rolled_back["payload"]["reason"]
    assert "model-rollback" in artifact_keys(server, watched.state_details.flow_run_id)
    promoted = read_events(server, "knot.model.promoted", model_resource_id(MODEL))
    assert [e["payload"]["alias"] for e in promoted] == ["challenger", "champion"]
