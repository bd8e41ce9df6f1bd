"""Deploying a flow to a work pool with the job variables of a compute profile.

``deploy_flow`` takes a flow file entrypoint (``"flows/train.py:train"``) or the name of
a knot flow template (``"training_flow"``), reads the work pool to learn its type,
renders the profile for that type, checks that the pool's base job template has every
job variable the profile sets (Prefect would accept and then ignore the others, losing
a GPU request without a word), and creates the deployment. Images are never built:
a profile's ``image`` is an image that already exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knot_prefect.compute.job_variables import render_job_variables
from knot_prefect.deploy.errors import WorkPoolTemplateError
from knot_prefect.deploy.templates import missing_variables, template_defaults
from knot_prefect.deploy.triggers import (
    PromotionTarget,
    drift_parameters,
    drift_trigger,
    parse_duration,
    promotion_trigger,
)
from knot_prefect.errors import ConfigurationError
from knot_prefect.synchronous import synchronous

if TYPE_CHECKING:
    from uuid import UUID

    from prefect import Flow
    from prefect.client.schemas.objects import WorkPool
    from prefect.events import DeploymentTriggerTypes, TriggerTypes
    from prefect.types.entrypoint import EntrypointType

    from knot_prefect.blocks.compute_profile import ComputeProfile


# Flows knot deploys by name besides the templates: ``knot deploy step_flow --pool P``
# creates the deployment ``knot-step/P`` that runs other flows' steps on pool P.
STEP_FLOWS: dict[str, str] = {"step_flow": "knot_prefect.compute.remote_step"}

# Prefect refuses proactive triggers (which end a cool-down) with shorter windows.
MIN_COOLDOWN = timedelta(seconds=10)


@dataclass(frozen=True)
class DriftRetraining:
    """When drift of ``MODEL@ALIAS`` runs a (retraining) deployment.

    Attributes:
        consecutive: Drifted monitoring runs it takes.
        within: The window they must fall in, e.g. ``"1d"``.
        severity: ``"warning"`` (every drifted run) or ``"error"``.
        cooldown: After a run it started ends, how long the trigger stays paused
            (e.g. ``"12h"``); None for no pause.
    """

    consecutive: int = 3
    within: str | timedelta = "1d"
    severity: str = "warning"
    cooldown: str | timedelta | None = None


async def adeploy_flow(
    flow: str,
    pool: str,
    profile: ComputeProfile | str | None = None,
    schedule: str | None = None,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    on_promotion: Sequence[str] | None = None,
    triggers: Sequence[DeploymentTriggerTypes] | None = None,
    on_drift: Sequence[str] | None = None,
    drift: DriftRetraining | None = None,
) -> UUID:
    """Deploy a flow to a work pool with a compute profile (async).

    Args:
        flow: ``"path/to/file.py:function"``, or the name of a knot flow template
            (``knot_prefect.flows``), deployed by module path.
        pool: Name of an existing work pool.
        profile: A :class:`~knot_prefect.ComputeProfile` or the name of a saved one.
        schedule: A cron expression, e.g. ``"0 6 * * *"``.
        name: Deployment name; the pool's name when omitted.
        parameters: Default parameters of the deployment.
        job_variables: Other job variables; any that contradict the profile raise.
        tags: Tags of the deployment.
        on_promotion: ``MODEL@ALIAS`` targets: the deployment runs whenever one of
            these aliases moves (a promotion or a rollback), its ``model_name``,
            ``alias`` and ``model_version`` parameters set from the event (see
            :func:`~knot_prefect.deploy.triggers.promotion_trigger`).
        triggers: Other Prefect deployment triggers to attach.
        on_drift: ``MODEL@ALIAS`` targets: the deployment (e.g. retraining) runs after
            repeated drift of the model's alias, as ``drift`` says (see
            :func:`~knot_prefect.deploy.triggers.drift_trigger`).
        drift: How many drifted runs, within what window, of which severity, and the
            cool-down; the defaults of :class:`DriftRetraining` when None.

    Returns:
        The deployment's id.

    Raises:
        ConfigurationError: The flow, the pool or the profile cannot be found, or an
            ``on_promotion`` / ``on_drift`` target or a drift setting is wrong.
        ProfileNotSatisfiableError: The pool type cannot satisfy the profile.
        WorkPoolTemplateError: The pool's base job template lacks variables the profile
            sets; the message says how to update it.
    """
    # Checked first: a bad MODEL@ALIAS must not leave a deployment without its trigger.
    targets = [PromotionTarget.parse(target) for target in on_promotion or ()]
    drifting = [PromotionTarget.parse(target) for target in on_drift or ()]
    drift = drift or DriftRetraining()
    cooldown = None if drift.cooldown is None else parse_duration(drift.cooldown, "cooldown")
    if cooldown is not None and cooldown < MIN_COOLDOWN:
        raise ConfigurationError(
            f"cooldown {drift.cooldown!r} is shorter than {MIN_COOLDOWN.seconds}s, the "
            "shortest window of Prefect's proactive triggers, which end it; give e.g. '10m'."
        )
    drift_triggers = [
        drift_trigger(target, consecutive=drift.consecutive, within=drift.within,
                      severity=drift.severity, name=drift_automation_name(name or pool, target))
        for target in drifting
    ]
    work_pool = await _read_work_pool(pool)
    variables = dict(job_variables or {})
    if profile is not None:
        compute = await _resolve_profile(profile)
        _check_template(work_pool, compute)
        variables = render_job_variables(
            compute,
            work_pool.type,
            variables,
            pool_defaults=template_defaults(work_pool.base_job_template),
        )
    flow_object, entrypoint_type = await _load_flow(flow)
    deployment_name = name or pool
    all_triggers: list[DeploymentTriggerTypes | TriggerTypes] = [
        *(triggers or ()),
        *(promotion_trigger(target, flow_object, name=f"{deployment_name}: {target} moved")
          for target in targets),
        *drift_triggers,
    ]
    for trigger in drift_triggers:
        trigger.parameters = drift_parameters(flow_object) or None
    deployment_id = await flow_object.adeploy(
        name=deployment_name,
        work_pool_name=pool,
        job_variables=variables,
        cron=schedule,
        parameters=parameters,
        tags=tags,
        triggers=all_triggers or None,
        build=False,
        push=False,
        entrypoint_type=entrypoint_type,
        print_next_steps=False,
        ignore_warnings=True,
    )
    if cooldown is not None:
        from knot_prefect.deploy.cooldown import add_cooldown

        for target in drifting:
            await add_cooldown(deployment_id, drift_automation_name(deployment_name, target),
                               cooldown)
    return deployment_id


def drift_automation_name(deployment_name: str, target: PromotionTarget) -> str:
    """The name of the automation that runs ``deployment_name`` on drift of ``target``."""
    return f"{deployment_name}: {target} drifted"


deploy_flow = synchronous(adeploy_flow)
"""Deploy a flow to a work pool with a compute profile.

The synchronous form of :func:`adeploy_flow`; same arguments.

Examples:
    Deploy a flow file to a Kubernetes GPU pool, every morning at six::

        from knot_prefect.deploy import deploy_flow

        deploy_flow("flows/train.py:train", pool="gke-gpu", profile="a100-train",
                    schedule="0 6 * * *")

    Re-score with the new champion whenever ``churn@champion`` moves::

        deploy_flow("batch_inference_flow", pool="cpu", on_promotion=["churn@champion"])

    Retrain after three drifted monitoring runs in a day, then pause for 12 hours::

        deploy_flow("training_flow", pool="cpu", on_drift=["churn@champion"],
                    drift=DriftRetraining(consecutive=3, within="1d", cooldown="12h"))
"""


async def _read_work_pool(pool: str) -> WorkPool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            return await client.read_work_pool(pool)
        except ObjectNotFound:
            raise ConfigurationError(
                f"Work pool {pool!r} does not exist. Create it first, e.g. "
                f"`prefect work-pool create {pool} --type process` (for GPU pools on "
                "kubernetes, ecs or cloud-run-v2 add "
                "`--base-job-template` with the output of `knot pool template`)."
            ) from None


async def _resolve_profile(profile: ComputeProfile | str) -> ComputeProfile:
    from knot_prefect.blocks.compute_profile import ComputeProfile

    if isinstance(profile, ComputeProfile):
        return profile
    from prefect.exceptions import ObjectNotFound

    try:
        loaded = await ComputeProfile.aload(profile)
    except (ValueError, ObjectNotFound) as exc:
        raise ConfigurationError(
            f"Compute profile {profile!r} could not be loaded ({exc}). Save one first, "
            f"e.g. ComputeProfile(cpu=2, memory='8Gi').save({profile!r})."
        ) from None
    return loaded


def _check_template(work_pool: WorkPool, profile: ComputeProfile) -> None:
    rendered = profile.job_variables(work_pool.type)
    missing = missing_variables(work_pool.base_job_template, rendered)
    if missing:
        raise WorkPoolTemplateError(
            f"Work pool {work_pool.name!r} ({work_pool.type}) has no job variable "
            f"{', '.join(repr(m) for m in missing)}, which compute profile "
            f"{profile.display_name!r} sets; the pool would ignore it. Give the pool "
            f"knot's base job template: `knot pool template --type {work_pool.type} --gpu "
            f"> template.json && prefect work-pool update {work_pool.name} "
            "--base-job-template template.json`."
        )


async def _load_flow(flow: str) -> tuple[Flow[Any, Any], EntrypointType]:
    from prefect import Flow
    from prefect.types.entrypoint import EntrypointType

    from knot_prefect._registry import FLOW_EXPORTS

    templates = {**FLOW_EXPORTS, **STEP_FLOWS}
    if flow in templates:
        module = importlib.import_module(templates[flow])
        template: Flow[Any, Any] = getattr(module, flow)
        # Deployed by module path: the worker imports it from the installed knot-prefect.
        return template, EntrypointType.MODULE_PATH
    path_text, sep, function = flow.rpartition(":")
    path = Path(path_text)
    if not sep or path.suffix != ".py" or not function:
        known = ", ".join(templates)
        raise ConfigurationError(
            f"Flow {flow!r} is neither 'path/to/file.py:function' nor a knot flow "
            f"template (known templates: {known})."
        )
    if not path.is_file():
        raise ConfigurationError(f"Flow file {str(path)!r} does not exist (from {flow!r}).")
    source = path.resolve().parent
    loaded = await Flow.afrom_source(source=str(source), entrypoint=f"{path.name}:{function}")
    return loaded, EntrypointType.FILE_PATH
