"""Deployment triggers that run a flow when a model alias moves.

``promote`` emits the Prefect event ``knot.model.promoted`` when it gives an alias to a
new version, and ``rollback`` emits ``knot.model.rolled-back`` when it moves the alias
back; both concern the resource ``knot.mlflow.registered-model.<name>`` with the label
``knot.model.alias``. :func:`promotion_trigger` builds the Prefect
``DeploymentEventTrigger`` that matches those events for one ``MODEL@ALIAS`` and passes
the model's name, alias and version into the flow's parameters, templated from the
event, so that e.g. batch inference re-scores whenever the champion changes.

Examples:
    >>> trigger = promotion_trigger("churn@champion", ["model_name", "alias", "as_of"])
    >>> sorted(trigger.expect)
    ['knot.model.promoted', 'knot.model.rolled-back']
    >>> trigger.match.root["knot.model.alias"]
    'champion'
    >>> trigger.parameters
    {'model_name': '{{ event.payload.name }}', 'alias': '{{ event.payload.alias }}'}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from knot_prefect.durations import parse_duration
from knot_prefect.errors import ConfigurationError
from knot_prefect.tracking.aliases import (
    PROMOTED_EVENT,
    ROLLED_BACK_EVENT,
    model_resource_id,
)

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.events import DeploymentEventTrigger

# A flow parameter with one of these names receives that field of the event's payload.
PROMOTION_PARAMETERS: Mapping[str, str] = {
    "model_name": "name",
    "alias": "alias",
    "model_alias": "alias",
    "model_version": "version",
}

# MLflow's own rule for alias names (mlflow.utils.validation).
_ALIAS = re.compile(r"^[\w\-]+$")
_RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class PromotionTarget:
    """A registered model and one of its aliases, written ``MODEL@ALIAS``.

    Attributes:
        model: Registered model name.
        alias: Alias of the model, e.g. ``"champion"``.
    """

    model: str
    alias: str

    @classmethod
    def parse(cls, text: str) -> PromotionTarget:
        """Read ``MODEL@ALIAS``.

        Args:
            text: e.g. ``"churn@champion"``.

        Returns:
            The model and alias.

        Raises:
            ConfigurationError: ``text`` is not ``MODEL@ALIAS`` with a valid MLflow
                model name and alias; the message says what to write instead.

        Examples:
            >>> PromotionTarget.parse("churn@champion")
            PromotionTarget(model='churn', alias='champion')
        """
        model, sep, alias = str(text).strip().rpartition("@")
        example = "e.g. 'churn@champion'"
        if not sep or not model or not alias:
            raise ConfigurationError(
                f"{text!r} is not MODEL@ALIAS: write the registered model name, '@' and "
                f"the alias whose moves should trigger the deployment, {example}."
            )
        if any(c in model for c in "/:") or model != model.strip():
            raise ConfigurationError(
                f"{model!r} (from {text!r}) is not a registered model name: MLflow model "
                f"names contain no '/' or ':' and no surrounding spaces ({example})."
            )
        if model.startswith("!") or model.endswith("*"):
            raise ConfigurationError(
                f"Model name {model!r} (from {text!r}) starts with '!' or ends with '*', "
                "which Prefect event matching reads as a negation or a wildcard; "
                "name one registered model exactly."
            )
        if not _ALIAS.match(alias) or _RESERVED_ALIAS.match(alias):
            raise ConfigurationError(
                f"{alias!r} (from {text!r}) is not a model alias: MLflow aliases are "
                "letters, digits, '_' and '-', and neither 'latest' nor a version like "
                f"'v2' ({example})."
            )
        return cls(model=model, alias=alias)

    def __str__(self) -> str:
        return f"{self.model}@{self.alias}"


def promotion_parameters(flow: Flow[Any, Any] | Iterable[str] | None) -> dict[str, str]:
    """The trigger parameters that pass a promotion event into a flow's parameters.

    Each parameter of the flow named in :data:`PROMOTION_PARAMETERS` (``model_name``,
    ``alias`` or ``model_alias``, ``model_version``) is templated from the event's
    payload; the flow's other parameters keep the deployment's defaults.

    Args:
        flow: A Prefect flow, the names of its parameters, or None (no parameters).

    Returns:
        ``{parameter: "{{ event.payload.FIELD }}"}``.

    Examples:
        >>> promotion_parameters(["model_version", "output_table"])
        {'model_version': '{{ event.payload.version }}'}
    """
    return _templated(flow, PROMOTION_PARAMETERS)


def _templated(flow: Flow[Any, Any] | Iterable[str] | None, fields: Mapping[str, str]
               ) -> dict[str, str]:
    """``{parameter: "{{ event.payload.FIELD }}"}`` for the flow's parameters in ``fields``."""
    if flow is None:
        return {}
    names = flow.parameters.properties if hasattr(flow, "parameters") else flow
    return {name: f"{{{{ event.payload.{fields[name]} }}}}" for name in names if name in fields}


def promotion_trigger(
    target: str | PromotionTarget,
    flow: Flow[Any, Any] | Iterable[str] | None = None,
    *,
    include_rollbacks: bool = True,
    name: str | None = None,
    enabled: bool = True,
) -> DeploymentEventTrigger:
    """A deployment trigger that runs the deployment when ``MODEL@ALIAS`` moves.

    The trigger fires once per event about that model whose alias label is that alias:
    a promotion that gives the alias to a new version and, with ``include_rollbacks``,
    a rollback that returns it to an earlier one. Promotions that move nothing emit no
    event, so they never trigger.

    Args:
        target: ``"MODEL@ALIAS"`` or a :class:`PromotionTarget`.
        flow: The deployed flow (or its parameter names): its ``model_name``, ``alias``
            / ``model_alias`` and ``model_version`` parameters receive the event's
            values. None passes no parameters.
        include_rollbacks: Also fire on ``knot.model.rolled-back``.
        name: Name of the automation Prefect creates; by default Prefect names it after
            the deployment (``DEPLOYMENT__automation_N``).
        enabled: Whether the automation starts enabled.

    Returns:
        A ``prefect.events.DeploymentEventTrigger`` for ``flow.deploy(triggers=[...])``,
        ``deploy_flow(..., triggers=[...])`` or the ``triggers:`` of ``prefect.yaml``.

    Raises:
        ConfigurationError: ``target`` is not ``MODEL@ALIAS``.

    Examples:
        >>> trigger = promotion_trigger("churn@champion", ["model_version"])
        >>> trigger.match.root["prefect.resource.id"]
        'knot.mlflow.registered-model.churn'
        >>> trigger.parameters
        {'model_version': '{{ event.payload.version }}'}
    """
    from prefect.events import DeploymentEventTrigger

    spec = target if isinstance(target, PromotionTarget) else PromotionTarget.parse(target)
    events = {PROMOTED_EVENT, ROLLED_BACK_EVENT} if include_rollbacks else {PROMOTED_EVENT}
    parameters = promotion_parameters(flow)
    return DeploymentEventTrigger(
        name=name,
        description=f"Run when the alias {spec.alias!r} of model {spec.model!r} moves.",
        enabled=enabled,
        expect=events,
        match={
            "prefect.resource.id": model_resource_id(spec.model),
            "knot.model.alias": spec.alias,
        },
        parameters=parameters or None,
    )


def watch_parameters(target: PromotionTarget, window: str | timedelta) -> dict[str, str]:
    """The parameters of a monitoring deployment that watches ``target`` after promotions.

    Raises:
        ConfigurationError: ``window`` is not a duration.

    Examples:
        >>> watch_parameters(PromotionTarget("churn", "champion"), "2h")
        {'model_name': 'churn', 'alias': 'champion', 'rollback_within': '2h'}
    """
    seconds = parse_duration(window, "window").total_seconds()
    written = window if isinstance(window, str) else f"{seconds:g}s"
    return {"model_name": target.model, "alias": target.alias, "rollback_within": written}


# A flow parameter with one of these names receives that field of a drift event's payload.
DRIFT_PARAMETERS: Mapping[str, str] = {"model_name": "model"}
DRIFT_SEVERITIES: tuple[str, ...] = ("warning", "error")
def drift_parameters(flow: Flow[Any, Any] | Iterable[str] | None) -> dict[str, str]:
    """The trigger parameters that pass a drift event into a flow's parameters.

    Examples:
        >>> drift_parameters(["model_name", "alias"])
        {'model_name': '{{ event.payload.model }}'}
    """
    return _templated(flow, DRIFT_PARAMETERS)


def drift_trigger(
    target: str | PromotionTarget,
    flow: Flow[Any, Any] | Iterable[str] | None = None,
    *,
    consecutive: int = 3,
    within: str | timedelta = "1d",
    severity: str = "warning",
    name: str | None = None,
    enabled: bool = True,
) -> DeploymentEventTrigger:
    """A deployment trigger that runs the deployment after repeated drift of ``MODEL@ALIAS``.

    ``monitoring_flow`` emits one ``knot.drift.detected`` event per run that found
    drift. The trigger counts those events of the model and alias (of at least
    ``severity``) and fires once when ``consecutive`` of them arrive within ``within``
    of the first: one noisy run starts nothing. After firing, Prefect starts counting
    again when that window has ended, so one burst of drift runs the deployment once.

    Args:
        target: ``"MODEL@ALIAS"`` (the monitored model and alias).
        flow: The deployed flow (or its parameter names): a ``model_name`` parameter
            receives the drifted model's name; others keep the deployment's defaults.
        consecutive: How many drifted monitoring runs it takes (at least 1).
        within: The window they must fall in, e.g. ``"1d"`` for daily monitoring.
        severity: ``"warning"`` counts every drifted run; ``"error"`` only runs whose
            drift crossed the error threshold.
        name: Name of the automation Prefect creates.
        enabled: Whether the automation starts enabled.

    Returns:
        A ``prefect.events.DeploymentEventTrigger`` (a threshold trigger).

    Raises:
        ConfigurationError: A bad target, count, window or severity; the message says
            what to write instead.

    Examples:
        >>> trigger = drift_trigger("churn@champion", ["model_name"], consecutive=3)
        >>> trigger.threshold, trigger.within, sorted(trigger.expect)
        (3, datetime.timedelta(days=1), ['knot.drift.detected'])
        >>> trigger.match.root["knot.drift.severity"]
        ['warning', 'error']
        >>> trigger.parameters
        {'model_name': '{{ event.payload.model }}'}
    """
    from prefect.events import DeploymentEventTrigger

    from knot_prefect.monitoring.events import DRIFT_EVENT, SEVERITY_LABEL

    spec = target if isinstance(target, PromotionTarget) else PromotionTarget.parse(target)
    if isinstance(consecutive, bool) or not isinstance(consecutive, int) or consecutive < 1:
        raise ConfigurationError(
            f"consecutive must be a whole number of drifted runs, 1 or more, not "
            f"{consecutive!r} (e.g. 3: retrain after three drifted monitoring runs)."
        )
    if severity not in DRIFT_SEVERITIES:
        raise ConfigurationError(
            f"severity {severity!r} is not a drift severity: use 'warning' (every drifted "
            "run) or 'error' (only runs whose drift crossed the error threshold)."
        )
    window = parse_duration(within, "within")
    parameters = drift_parameters(flow)
    severities = list(DRIFT_SEVERITIES[DRIFT_SEVERITIES.index(severity):])
    return DeploymentEventTrigger(
        name=name,
        description=(f"Run after {consecutive} drifted monitoring run(s) of {spec} "
                     f"(severity {severity} or worse) within {window}."),
        enabled=enabled,
        expect={DRIFT_EVENT},
        match={
            "prefect.resource.id": model_resource_id(spec.model),
            "knot.model.alias": spec.alias,
            SEVERITY_LABEL: severities,
        },
        posture="Reactive",
        threshold=consecutive,
        within=window,
        parameters=parameters or None,
    )


__all__ = [
    "DRIFT_PARAMETERS",
    "DRIFT_SEVERITIES",
    "PROMOTION_PARAMETERS",
    "PromotionTarget",
    "drift_parameters",
    "drift_trigger",
    "parse_duration",
    "promotion_parameters",
    "promotion_trigger",
    "watch_parameters",
]
