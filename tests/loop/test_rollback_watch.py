"""The watch window after a promotion, on a real Prefect server and MLflow store.

A promoted champion whose monitoring run fails on error-level drift within the window
is rolled back to the version before it, with ``knot.model.rolled-back`` and the
``model-rollback`` artifact saying why; outside the window the run only fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect import flow
from typer.testing import CliRunner

from knot_prefect.tracking.aliases import alias_holder, model_resource_id
from tests.loop.conftest import REFERENCE_SEED, TRACKING, Monitored, read_events
from tests.services import wait_for
from tests.triggers.conftest import log_and_register, rows

MODEL = "churn-loop-watch"


@flow
def promote_challenger(version: int) -> Any:
    from knot_prefect.tasks import promote

    return promote(MODEL, version, "champion", data=rows(seed=5), target="label",
                   min_delta=-1.0, tracking=TRACKING)


@pytest.fixture(scope="module")
def challenger(monitored: Monitored) -> int:
    """v2, with predictions of its own in the monitored table."""
    from sklearn.linear_model import LogisticRegression

    from knot_prefect.monitoring.profile import build_profile
    from knot_prefect.monitoring.reference import save_reference_profile

    data = rows(seed=REFERENCE_SEED)
    version = log_and_register(monitored.tracking, MODEL, LogisticRegression(), data)
    save_reference_profile(monitored.tracking, MODEL, version,
                           build_profile(data[["x1", "x2"]]))
    predictions = monitored.warehouse.read_table("predictions")
    monitored.warehouse.write(predictions.assign(model_version=version), "predictions",
                              mode="append")
    return version


def promote_and_monitor(monitored: Monitored, version: int, within: str,
                        promoted_ago: timedelta = timedelta(0)) -> Any:
    client = monitored.tracking.get_client()
    client.set_registered_model_alias(MODEL, "champion", str(monitored.version))
    assert promote_challenger(version).promoted
    if promoted_ago:
        decided = (datetime.now(UTC) - promoted_ago).isoformat(timespec="seconds")
        client.set_model_version_tag(MODEL, str(version),
                                     "knot.promotion.champion.decided_at", decided)
    monitored.score_rows(x1_shift=2.0)
    from knot_prefect.flows import monitoring_flow

    return monitoring_flow(
        model_name=MODEL, predictions_table="predictions", key_columns=["customer_id"],
        entity_sql="select * from scoring_rows", warehouse="loop-warehouse",
        tracking=TRACKING, rollback_within=within, return_state=True)


def test_a_champion_failing_within_its_window_is_rolled_back_with_the_reason(
    server: Any, monitored: Monitored, challenger: int
) -> None:
    state = promote_and_monitor(monitored, challenger, within="1h")
    assert state.is_failed()  # the run still fails on the drift
    client = monitored.tracking.get_client()
    assert alias_holder(client, MODEL, "champion") == monitored.version

    reason = f"{MODEL} v{challenger} failed drift-{MODEL}-x1-error within 1:00:00"
    [event] = wait_for("the rollback event", lambda: read_events(
        server, "knot.model.rolled-back", model_resource_id(MODEL)), timeout=30,
        interval=0.5)
    assert event["payload"]["previous_version"] == challenger
    assert event["payload"]["version"] == monitored.version
    assert event["payload"]["reason"].startswith(reason)
    run_id = state.state_details.flow_run_id
    assert f"prefect.flow-run.{run_id}" in {r["prefect.resource.id"] for r in event["related"]}

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    [artifact] = server.read_artifacts(artifact_filter=ArtifactFilter(
        key=ArtifactFilterKey(any_=["model-rollback"])), flow_run_filter=None)
    assert artifact.flow_run_id == run_id
    assert f"from version {challenger} to version {monitored.version}" in artifact.data
    assert reason in artifact.data
    tag = client.get_model_version(MODEL, str(monitored.version)).tags
    assert reason in tag["knot.rollback.champion"]


def test_after_the_window_a_failing_champion_stays(
    server: Any, monitored: Monitored, challenger: int
) -> None:
    state = promote_and_monitor(monitored, challenger, within="1h",
                                promoted_ago=timedelta(hours=2))
    assert state.is_failed()
    assert alias_holder(monitored.tracking.get_client(), MODEL, "champion") == challenger


def test_a_bad_window_is_refused_before_anything_runs(monitored: Monitored) -> None:
    from knot_prefect.cli.main import app
    from knot_prefect.flows import monitoring_flow

    result = CliRunner().invoke(app, ["deploy", "monitoring_flow", "--pool", "none",
                                      "--watch", f"{MODEL}@champion", "--window", "soon"])
    assert result.exit_code == 1 and "window 'soon' is not a duration" in result.output
    state = monitoring_flow(model_name=MODEL, rollback_within="2 hours", return_state=True)
    assert state.is_failed() and "rollback_within '2 hours'" in str(state.message)


def test_deploy_watch_sets_the_monitoring_parameters(server: Any) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate

    from knot_prefect.cli.main import app

    server.create_work_pool(WorkPoolCreate(name="loop-watch-pool", type="process"),
                            overwrite=True)
    result = CliRunner().invoke(app, [
        "deploy", "monitoring_flow", "--pool", "loop-watch-pool", "--name", "watch",
        "--watch", f"{MODEL}@champion", "--window", "2h",
        "--param", "predictions_table=predictions"])
    assert result.exit_code == 0, result.output
    assert f"rolls {MODEL}@champion back when a run fails within 2h" in result.output
    deployment = server.read_deployment_by_name("knot-monitoring/watch")
    assert deployment.parameters == {"model_name": MODEL, "alias": "champion",
                                     "rollback_within": "2h",
                                     "predictions_table": "predictions"}


