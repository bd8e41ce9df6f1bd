"""Registry tasks: register a model, promote it by alias (champion/challenger), roll back.

Promotion uses registered-model aliases, never the deprecated stages. Each move of an
alias is appended to a registered-model tag (``knot.alias_history.<alias>``, a JSON list
of versions whose last entry is the current holder), which is what ``rollback`` reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import ConfigurationError, KnotError
from knot_prefect.tracking.scoring import Task

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

SOURCE_TAG = "knot.source_uri"
HISTORY_TAG = "knot.alias_history.{alias}"
HISTORY_LIMIT = 100

# The Prefect events promote and rollback emit; deployment triggers match on them.
PROMOTED_EVENT = "knot.model.promoted"
ROLLED_BACK_EVENT = "knot.model.rolled-back"
MODEL_RESOURCE_PREFIX = "knot.mlflow.registered-model."


def model_resource_id(name: str) -> str:
    """The Prefect resource id of a registered model in knot's events.

    Examples:
        >>> model_resource_id("churn")
        'knot.mlflow.registered-model.churn'
    """
    return f"{MODEL_RESOURCE_PREFIX}{name}"


class RegistryError(KnotError):
    """A registered model, version or alias is not what the call needs."""


@dataclass(frozen=True)
class ModelVersionRef:
    """A registered model version.

    Attributes:
        name: Registered model name.
        version: Version number.
        source: The model URI that was registered.
        run_id: MLflow run that produced the model, when known.
    """

    name: str
    version: int
    source: str
    run_id: str | None = None

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of ``promote``.

    Attributes:
        name: Registered model name.
        alias: The alias contested, e.g. ``"champion"``.
        challenger_version: The version that asked for the alias.
        champion_version: The version that held it before (None when nobody did).
        metric: The metric compared.
        challenger_score: Challenger's score on the evaluation data (None if not scored).
        champion_score: Champion's score on the same data (None when there was none).
        promoted: Whether the alias now points at the challenger because of this call.
        reason: One sentence explaining the decision.
    """

    name: str
    alias: str
    challenger_version: int
    champion_version: int | None
    metric: str
    challenger_score: float | None
    champion_score: float | None
    promoted: bool
    reason: str

    @property
    def decision(self) -> str:
        """``"promoted"``, ``"already-holder"`` or ``"kept-champion"``."""
        if self.promoted:
            return "promoted"
        if self.champion_version == self.challenger_version:
            return "already-holder"
        return "kept-champion"


@dataclass(frozen=True)
class AliasMove:
    """The outcome of ``rollback``: where an alias pointed before and after."""

    name: str
    alias: str
    from_version: int | None
    to_version: int


# -- register ------------------------------------------------------------------------
@task(name="register-model", cache_policy=NO_CACHE)
def register_model(
    model_uri: str,
    name: str,
    tracking: MLflowTracking | str | None = None,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
) -> ModelVersionRef:
    """Register ``model_uri`` as a new version of ``name``; retry-safe.

    A model URI registered before under the same name returns its existing version
    instead of creating a duplicate, so a retried flow does not add versions.

    Args:
        model_uri: The logged model, e.g. the URI ``train`` returned.
        name: Registered model name (created when missing).
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.
        tags: Tags for the new version.
        description: Description of the new version.

    Returns:
        The registered version.

    Examples:
        >>> from prefect import flow
        >>> @flow
        ... def publish(model_uri):
        ...     return register_model(model_uri, "churn").version
    """
    import mlflow

    from knot_prefect.tracking.fluent import fluent_store
    from knot_prefect.tracking.resolve import resolve_tracking

    block = resolve_tracking(tracking)
    client = block.get_client()
    existing = _version_with_source(client, name, model_uri)
    if existing is not None:
        _log(f"{model_uri} is already version {existing.version} of {name!r}")
        return existing
    with block.session(), fluent_store(block):
        version = mlflow.register_model(
            model_uri, name, tags={**(tags or {}), SOURCE_TAG: model_uri}
        )
    if description:
        client.update_model_version(name, str(version.version), description=description)
    ref = ModelVersionRef(
        name=name, version=int(version.version), source=model_uri, run_id=version.run_id
    )
    _log(f"Registered {model_uri} as version {ref.version} of {name!r}")
    return ref


def _version_with_source(client: MlflowClient, name: str, model_uri: str) -> ModelVersionRef | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get(SOURCE_TAG) == model_uri:
            return ModelVersionRef(name, int(version.version), model_uri, version.run_id)
    return None


# -- promote -------------------------------------------------------------------------
@task(name="promote", cache_policy=NO_CACHE)
def promote(
    name: str,
    version: int | str,
    alias: str = "champion",
    metric: str | None = None,
    higher_is_better: bool | None = None,
    min_delta: float = 0.0,
    data: pd.DataFrame | None = None,
    target: str | None = None,
    task: Task = "classification",
    tracking: MLflowTracking | str | None = None,
) -> PromotionDecision:
    """Give ``alias`` to ``version`` only if it beats the current holder on the same data.

    Both the challenger (``version``) and the champion (the alias's current holder) are
    scored on ``data``. The alias moves when the challenger is better by more than
    ``min_delta``, or when no version holds the alias yet. Otherwise nothing moves and
    the task still succeeds. Either way the decision and both scores are written as tags
    on the challenger version (``knot.promotion.<alias>.*``) and as a Prefect artifact;
    a move also emits the Prefect event ``knot.model.promoted``.

    Args:
        name: Registered model name.
        version: The challenger version.
        alias: The alias to contest.
        metric: Metric to compare (default ``f1`` for classification, ``rmse`` for
            regression); see :mod:`knot_prefect.tracking.scoring`.
        higher_is_better: Direction of ``metric``; None infers it from the name (only
            ``rmse``, ``mae``, ``mse`` and ``log_loss`` are lower-is-better).
        min_delta: How much better the challenger must be.
        data: Labelled evaluation rows; required when the alias already has a holder.
        target: The label column of ``data``.
        task: ``"classification"`` or ``"regression"``.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.

    Returns:
        The decision with both scores.

    Raises:
        RegistryError: The model or version does not exist.
        ConfigurationError: ``data``/``target`` missing while a champion exists, or an
            unknown metric.

    Examples:
        >>> from prefect import flow
        >>> @flow
        ... def contest(frame):
        ...     return promote("churn", 2, data=frame, target="label").promoted
    """
    from knot_prefect.tracking.fluent import fluent_store
    from knot_prefect.tracking.resolve import resolve_tracking
    from knot_prefect.tracking.scoring import DEFAULT_METRIC
    from knot_prefect.tracking.scoring import higher_is_better as default_direction

    block = resolve_tracking(tracking)
    client = block.get_client()
    challenger = int(version)
    _require_version(client, name, challenger)
    metric = metric or DEFAULT_METRIC.get(task, "")
    higher = default_direction(metric) if higher_is_better is None else higher_is_better
    champion = _alias_holder(client, name, alias)

    challenger_score = champion_score = None
    with block.session(), fluent_store(block):
        if data is not None or champion not in (None, challenger):
            if data is None or target is None:
                raise ConfigurationError(
                    f"promote({name!r}, {challenger}) needs data= and target= to compare "
                    f"with the current {alias!r} (version {champion}): both are scored on "
                    "the same evaluation rows."
                )
            challenger_score = _score(name, challenger, data, target, task, metric)
            if champion is not None and champion != challenger:
                champion_score = _score(name, champion, data, target, task, metric)

    if champion is None:
        promoted, reason = True, f"no version held {alias!r}"
    elif champion == challenger:
        promoted, reason = False, f"version {challenger} already holds {alias!r}"
    else:
        assert challenger_score is not None and champion_score is not None
        gain = challenger_score - champion_score if higher else champion_score - challenger_score
        promoted = gain > min_delta
        direction = "higher" if higher else "lower"
        reason = (
            f"challenger {metric}={challenger_score:.6g} vs champion {champion_score:.6g} "
            f"({direction} is better, improvement {gain:.6g} "
            f"{'>' if promoted else '<='} min_delta {min_delta:g})"
        )

    decision = PromotionDecision(
        name=name,
        alias=alias,
        challenger_version=challenger,
        champion_version=champion,
        metric=metric,
        challenger_score=challenger_score,
        champion_score=champion_score,
        promoted=promoted,
        reason=reason,
    )
    if promoted:
        _move_alias(client, name, alias, champion, challenger)
    _record_decision(client, decision, min_delta)
    _report_promotion(decision)
    if promoted:
        _emit(
            PROMOTED_EVENT,
            name,
            alias,
            challenger,
            {"previous_version": champion, **_scores(decision)},
        )
    _log(f"{name!r} {alias!r}: {decision.decision} - {reason}")
    return decision


def _score(
    name: str, version: int, data: pd.DataFrame, target: str, task: Task, metric: str
) -> float:
    from knot_prefect.tracking.scoring import score

    metrics = score(f"models:/{name}/{version}", data, target, task)
    if metric not in metrics:
        raise ConfigurationError(
            f"Metric {metric!r} is not computed for {task}; choose one of {sorted(metrics)}."
        )
    return metrics[metric]


def _scores(decision: PromotionDecision) -> dict[str, Any]:
    return {
        "metric": decision.metric,
        "challenger_score": decision.challenger_score,
        "champion_score": decision.champion_score,
    }


def _record_decision(client: MlflowClient, decision: PromotionDecision, min_delta: float) -> None:
    prefix = f"knot.promotion.{decision.alias}."
    values = {
        "decision": decision.decision,
        "metric": decision.metric,
        "challenger_score": decision.challenger_score,
        "champion_score": decision.champion_score,
        "champion_version": decision.champion_version,
        "min_delta": min_delta,
        "reason": decision.reason,
        "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    from knot_prefect.tracking.prefect_context import current_prefect_run

    flow_run_id = current_prefect_run().flow_run_id
    if flow_run_id:
        values["flow_run_id"] = flow_run_id
    for key, value in values.items():
        client.set_model_version_tag(
            decision.name,
            str(decision.challenger_version),
            prefix + key,
            "" if value is None else str(value),
        )


def _report_promotion(decision: PromotionDecision) -> None:
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.6g}"

    create_markdown_artifact(
        key="model-promotion",
        markdown=(
            f"### {decision.name} `@{decision.alias}`: {decision.decision}\n\n"
            f"| | version | {decision.metric} |\n|---|---|---|\n"
            f"| challenger | {decision.challenger_version} | "
            f"{shown(decision.challenger_score)} |\n"
            f"| champion | {decision.champion_version or '-'} | "
            f"{shown(decision.champion_score)} |\n\n"
            f"{decision.reason}."
        ),
        description=f"Promotion decision for {decision.name}@{decision.alias}.",
    )


# -- rollback ------------------------------------------------------------------------
@task(name="rollback", cache_policy=NO_CACHE)
def rollback(
    name: str, alias: str = "champion", tracking: MLflowTracking | str | None = None
) -> AliasMove:
    """Point ``alias`` back at the version that held it before the last promotion.

    Args:
        name: Registered model name.
        alias: The alias to move back.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.

    Returns:
        Where the alias pointed before and after.

    Raises:
        RegistryError: No earlier holder is recorded for the alias.

    Examples:
        >>> from prefect import flow
        >>> @flow
        ... def undo():
        ...     return rollback("churn", "champion").to_version
    """
    from knot_prefect.tracking.resolve import resolve_tracking

    block = resolve_tracking(tracking)
    client = block.get_client()
    holder = _alias_holder(client, name, alias)
    history = _history(client, name, alias)
    if history and history[-1] == holder:
        history = history[:-1]
    # Otherwise an earlier rollback stopped between its two writes, or the alias was
    # moved by hand: the last recorded holder is still the one to return to.
    if not history:
        raise RegistryError(
            f"No earlier holder of {name}@{alias} is recorded (tag "
            f"{HISTORY_TAG.format(alias=alias)!r}); nothing to roll back to. Set the alias "
            "by hand with MlflowClient.set_registered_model_alias if needed."
        )
    target = history[-1]
    _require_version(client, name, target)
    _write_history(client, name, alias, history)
    client.set_registered_model_alias(name, alias, str(target))
    client.set_model_version_tag(
        name,
        str(target),
        f"knot.rollback.{alias}",
        f"restored from version {holder} at "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
    )
    move = AliasMove(name=name, alias=alias, from_version=holder, to_version=target)
    _emit(ROLLED_BACK_EVENT, name, alias, target, {"previous_version": holder})
    _report_rollback(move)
    _log(f"{name!r} {alias!r} rolled back from version {holder} to {target}")
    return move


def _report_rollback(move: AliasMove) -> None:
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return
    create_markdown_artifact(
        key="model-rollback",
        markdown=(
            f"### {move.name} `@{move.alias}` rolled back\n\n"
            f"from version {move.from_version} to version {move.to_version}."
        ),
        description=f"Rollback of {move.name}@{move.alias}.",
    )


# -- aliases and their history ---------------------------------------------------------
def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _require_model(client: MlflowClient, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    names = sorted(model.name for model in client.search_registered_models(max_results=50))
    raise RegistryError(
        f"No registered model named {name!r}. Registered models: {', '.join(names) or 'none'}."
    ) from None


def _require_version(client: MlflowClient, name: str, version: int) -> None:
    from mlflow.exceptions import MlflowException

    _require_model(client, name)
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        versions = sorted(
            int(v.version) for v in client.search_model_versions(f"name = '{_quote(name)}'")
        )
        raise RegistryError(
            f"{name!r} has no version {version}; its versions are {versions}."
        ) from None


def set_alias(client: MlflowClient, name: str, alias: str, version: int) -> int | None:
    """Point ``alias`` of ``name`` at ``version`` with knot's bookkeeping; retry-safe.

    The move is recorded in the alias history (so :func:`rollback` can undo it) and
    emits ``knot.model.promoted``, as a move made by :func:`promote` does; pointing the
    alias where it already is changes and emits nothing. For callers that have already
    decided (e.g. a tuning search naming its best trial ``challenger``).

    Args:
        client: An MLflow client on the registry.
        name: Registered model name.
        alias: The alias to move.
        version: The version that receives it.

    Returns:
        The version that held the alias before, or None.
    """
    previous = _alias_holder(client, name, alias)
    if previous != version:
        _move_alias(client, name, alias, previous, version)
        _emit(PROMOTED_EVENT, name, alias, version, {"previous_version": previous})
    return previous


def _alias_holder(client: MlflowClient, name: str, alias: str) -> int | None:
    model = _require_model(client, name)
    holder = model.aliases.get(alias)
    return None if holder is None else int(holder)


def _history(client: MlflowClient, name: str, alias: str) -> list[int]:
    model = _require_model(client, name)
    raw = model.tags.get(HISTORY_TAG.format(alias=alias))
    return [int(v) for v in json.loads(raw)] if raw else []


def _write_history(client: MlflowClient, name: str, alias: str, history: list[int]) -> None:
    client.set_registered_model_tag(
        name, HISTORY_TAG.format(alias=alias), json.dumps(history[-HISTORY_LIMIT:])
    )


def _move_alias(
    client: MlflowClient, name: str, alias: str, holder: int | None, new_holder: int
) -> None:
    history = _history(client, name, alias)
    if holder is not None and (not history or history[-1] != holder):
        history.append(holder)  # The alias was set outside knot: remember who held it.
    history.append(new_holder)
    _write_history(client, name, alias, history)
    client.set_registered_model_alias(name, alias, str(new_holder))


# -- reporting -----------------------------------------------------------------------
def _emit(event: str, name: str, alias: str, version: int, payload: dict[str, Any]) -> None:
    from prefect.events import emit_event

    # Labels are strings; a trigger matches on the resource id (the model) and the
    # alias label, and templates flow parameters from the payload.
    emit_event(
        event=event,
        resource={
            "prefect.resource.id": model_resource_id(name),
            "prefect.resource.name": name,
            "knot.model.name": name,
            "knot.model.alias": alias,
            "knot.model.version": str(version),
        },
        payload={
            "name": name,
            "alias": alias,
            "version": version,
            "model_uri": f"models:/{name}/{version}",
            **payload,
        },
    )


def _log(message: str) -> None:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


__all__ = [
    "MODEL_RESOURCE_PREFIX",
    "PROMOTED_EVENT",
    "ROLLED_BACK_EVENT",
    "AliasMove",
    "ModelVersionRef",
    "PromotionDecision",
    "RegistryError",
    "model_resource_id",
    "promote",
    "register_model",
    "rollback",
]
