"""promotion_trigger: MODEL@ALIAS parsing, the event it matches, the parameters it passes,
and the YAML form in flows/prefect.yaml."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect.events import DeploymentEventTrigger
from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
from prefect.events.schemas.events import ResourceSpecification
from pydantic import TypeAdapter
from typer.testing import CliRunner

from knot_prefect.deploy.triggers import PromotionTarget, promotion_parameters, promotion_trigger
from knot_prefect.errors import ConfigurationError
from knot_prefect.flows import batch_inference_flow
from tests.deployments.conftest import load_prefect_yaml
from tests.services import wait_for
from tests.triggers.conftest import log_and_register, rows


def test_parse_reads_model_and_alias_splitting_at_the_last_at_sign() -> None:
    assert PromotionTarget.parse("churn@champion") == PromotionTarget("churn", "champion")
    assert PromotionTarget.parse(" team@churn@challenger-2 ") == PromotionTarget(
        "team@churn", "challenger-2")
    assert str(PromotionTarget("churn", "champion")) == "churn@champion"


@pytest.mark.parametrize(("text", "says"), [
    ("churn", "is not MODEL@ALIAS"),
    ("churn@", "is not MODEL@ALIAS"),
    ("@champion", "is not MODEL@ALIAS"),
    ("team/churn@champion", "contain no '/' or ':'"),
    ("churn*@champion", "wildcard"),
    ("!churn@champion", "negation"),
    ("churn@champ ion", "letters, digits, '_' and '-'"),
    ("churn@latest", "neither 'latest'"),
    ("churn@v3", "nor a version like 'v2'"),
])
def test_bad_targets_are_refused_with_the_fix(text: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=r"e\.g\. 'churn@champion'|exactly") as info:
        PromotionTarget.parse(text)
    assert says in str(info.value)
    assert repr(text) in str(info.value)


def test_trigger_matches_the_models_alias_moves_and_templates_the_flows_parameters() -> None:
    trigger = promotion_trigger("churn@champion", ["model_name", "alias", "model_version",
                                                    "output_table"])
    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {"knot.model.promoted", "knot.model.rolled-back"}
    assert isinstance(trigger.match, ResourceSpecification)
    assert trigger.match.root == {
        "prefect.resource.id": "knot.mlflow.registered-model.churn",
        "knot.model.alias": "champion",
    }
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.parameters == {
        "model_name": "{{ event.payload.name }}",
        "alias": "{{ event.payload.alias }}",
        "model_version": "{{ event.payload.version }}",
    }
    only_promotions = promotion_trigger(PromotionTarget("churn", "champion"),
                                        include_rollbacks=False, name="rescore")
    assert only_promotions.expect == {"knot.model.promoted"}
    assert only_promotions.name == "rescore"
    assert only_promotions.parameters is None  # no flow: the deployment's defaults


def test_parameters_come_from_the_flows_signature() -> None:
    assert promotion_parameters(batch_inference_flow) == {
        "model_name": "{{ event.payload.name }}", "alias": "{{ event.payload.alias }}",
    }
    assert promotion_parameters(["model_alias"]) == {"model_alias": "{{ event.payload.alias }}"}
    assert promotion_parameters(None) == {}


def test_prefect_yaml_example_is_the_trigger_knot_builds() -> None:
    [deployment] = [d for d in load_prefect_yaml()["deployments"]
                    if d["name"] == "batch-inference-on-promotion"]
    assert deployment["entrypoint"] == "batch_inference.py:batch_inference_flow"
    [spec] = deployment["triggers"]
    from_yaml = TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
    built = promotion_trigger("churn-model@champion", batch_inference_flow)
    # The same trigger; only the automation's id, name and description are its own.
    own = {"id", "name", "description"}
    assert from_yaml.model_dump(exclude=own) == built.model_dump(exclude=own)


def test_knot_deploy_refuses_a_bad_target_before_deploying() -> None:
    from knot_prefect.cli.main import app

    result = CliRunner().invoke(app, [
        "deploy", "batch_inference_flow", "--pool", "no-such-pool",
        "--on-promotion", "churn-champion",
    ])
    assert result.exit_code == 1
    # The target is checked first: the message is about it, not the missing pool.
    assert "'churn-champion' is not MODEL@ALIAS" in result.output
    assert "no-such-pool" not in result.output


def test_event_emitted_by_promote_is_what_the_trigger_matches(tracking_store: Any) -> None:
    """The real promote task's event, read back from the Prefect API, fires the trigger."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.events import ReceivedEvent
    from sklearn.dummy import DummyClassifier

    from knot_prefect.tasks.mlflow_registry import promote

    name = f"trigger-unit-{uuid.uuid4().hex[:8]}"
    version = log_and_register(tracking_store, name, DummyClassifier(), rows(seed=1))
    decision = promote.fn(name, version, "champion", tracking=tracking_store)
    assert decision.promoted

    trigger = promotion_trigger(f"{name}@champion")
    other_alias = promotion_trigger(f"{name}@challenger")

    def stored() -> list[dict[str, Any]] | None:
        with get_client(sync_client=True) as client:
            response = client.request("POST", "/events/filter", json={"filter": {
                "event": {"name": ["knot.model.promoted"]},
                "resource": {"id": [f"knot.mlflow.registered-model.{name}"]},
                "occurred": {"since": "2000-01-01T00:00:00Z"},
            }})
        events: list[dict[str, Any]] = response.json()["events"]
        return events or None

    events = wait_for("the knot.model.promoted event", stored, timeout=30, interval=0.5)
    [event] = [ReceivedEvent.model_validate(e) for e in events]
    assert isinstance(trigger.match, ResourceSpecification)
    assert isinstance(other_alias.match, ResourceSpecification)
    assert trigger.expect is not None and event.event in trigger.expect
    assert trigger.match.matches(event.resource)
    assert not other_alias.match.matches(event.resource)
    assert event.payload["version"] == version and event.payload["name"] == name
