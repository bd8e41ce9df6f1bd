"""tracked_run inside Prefect flows and tasks: tags, links both ways, resume on retry."""

from __future__ import annotations

import mlflow
import pytest
from prefect import flow, task

from knot_prefect.blocks.mlflow_tracking import MLflowTracking
from knot_prefect.tracking import tracked_run
from knot_prefect.tracking.runs import RUN_KEY_TAG
from tests.tracking.conftest import TOKEN, AuthProxy, flow_run_artifacts, flow_run_logs


def test_run_is_tagged_with_its_prefect_run_and_linked_back(embedded: MLflowTracking) -> None:
    @task
    def fit() -> str:
        with tracked_run(embedded, run_name="fit") as run:
            mlflow.log_metric("loss", 0.25)
        return run.info.run_id

    @flow(name="tagging-flow")
    def pipeline() -> str:
        return fit()

    state = pipeline(return_state=True)
    run_id = state.result()
    flow_run_id = str(state.state_details.flow_run_id)

    stored = embedded.get_client().get_run(run_id)
    tags = stored.data.tags
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "fit"
    assert tags["knot.prefect.flow_run_id"] == flow_run_id
    assert tags["knot.prefect.flow_name"] == "tagging-flow"
    assert flow_run_id in tags["knot.prefect.flow_run_url"]
    assert tags["knot.prefect.task_run_id"] and tags[RUN_KEY_TAG].startswith(
        tags["knot.prefect.task_run_id"]
    )
    assert tags["knot.git.commit"]  # The suite runs from a git checkout.
    assert stored.data.metrics["loss"] == 0.25

    # The embedded store has no web page: the artifact says how to find the run.
    notes = [a for a in flow_run_artifacts(flow_run_id) if a.key == "mlflow-run-fit"]
    assert len(notes) == 1 and notes[0].type == "markdown"
    assert run_id in str(notes[0].data)


def test_a_retried_task_resumes_its_mlflow_run(embedded: MLflowTracking) -> None:
    attempts: list[str] = []

    @task(retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        with tracked_run(embedded, run_name="flaky") as run:
            mlflow.log_metric("attempt", len(attempts) + 1, step=len(attempts))
            attempts.append(run.info.run_id)
            if len(attempts) < 3:
                raise RuntimeError("transient failure")
        return run.info.run_id

    @flow
    def pipeline() -> str:
        return flaky()

    run_id = pipeline()
    assert attempts == [run_id, run_id, run_id]
    client = embedded.get_client()
    runs = client.search_runs([embedded.get_or_create_experiment_id()])
    assert [r.info.run_id for r in runs] == [run_id]
    stored = client.get_run(run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.tags["knot.resumed_attempts"] == "2"
    history = client.get_metric_history(run_id, "attempt")
    assert sorted(m.value for m in history) == [1.0, 2.0, 3.0]


def test_two_runs_with_one_name_in_a_task_stay_apart(embedded: MLflowTracking) -> None:
    @task
    def twice() -> list[str]:
        ids = []
        for _ in range(2):
            with tracked_run(embedded, run_name="same") as run:
                ids.append(run.info.run_id)
        return ids

    @flow
    def pipeline() -> list[str]:
        return twice()

    first, second = pipeline()
    assert first != second


def test_nested_task_runs_hang_under_the_flow_run(embedded: MLflowTracking) -> None:
    @task
    def step(name: str) -> str:
        with tracked_run(embedded, run_name=name, nested=True) as run:
            return run.info.run_id

    @flow
    def pipeline() -> tuple[str, list[str]]:
        with tracked_run(embedded, run_name="parent") as parent:
            children = [step(n) for n in ("a", "b")]
        return parent.info.run_id, children

    parent_id, children = pipeline()
    client = embedded.get_client()
    for child in children:
        assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent_id


def test_a_failing_block_marks_the_run_failed(embedded: MLflowTracking) -> None:
    with pytest.raises(ValueError, match="boom"), tracked_run(embedded, run_name="failing") as run:
        raise ValueError("boom")
    assert embedded.get_client().get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


@pytest.mark.services
def test_server_runs_link_to_the_run_page_and_never_leak_the_token(
    served: MLflowTracking, token_proxy: AuthProxy
) -> None:
    @task
    def fit() -> str:
        with tracked_run(served, run_name="served-fit") as run:
            mlflow.log_param("alpha", 0.1)
            mlflow.log_text("hello", "notes/hello.txt")  # Artifacts go through the proxy.
        return run.info.run_id

    @flow
    def pipeline() -> str:
        return fit()

    state = pipeline(return_state=True)
    run_id = state.result()
    flow_run_id = state.state_details.flow_run_id
    assert f"Bearer {TOKEN}" in token_proxy.seen_authorization

    client = served.get_client()
    stored = client.get_run(run_id)
    assert client.download_artifacts(run_id, "notes/hello.txt") is not None
    assert TOKEN not in str(stored.data.tags) + str(stored.data.params)

    links = [a for a in flow_run_artifacts(flow_run_id) if a.key == "mlflow-run-served-fit"]
    assert len(links) == 1  # Prefect stores link artifacts as markdown links.
    expected = f"{token_proxy.url}/#/experiments/{stored.info.experiment_id}/runs/{run_id}"
    assert expected in str(links[0].data)
    everything = str([a.data for a in flow_run_artifacts(flow_run_id)]) + str(
        flow_run_logs(flow_run_id)
    )
    assert TOKEN not in everything
