"""Registry tasks: register a model, promote it by alias (champion/challenger), roll back.

Promotion uses registered-model aliases, never the deprecated stages. Each move of an
alias is appended to a registered-model tag (``knot.alias_history.<alias>``, a JSON list
of versions whose last entry is the current holder), which is what ``rollback`` reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from knot_prefect.errors import ConfigurationError
from knot_prefect.run_context import log_in_run
from knot_prefect.tracking.aliases import (
    HISTORY_TAG,
    MODEL_RESOURCE_PREFIX,
    PROMOTED_EVENT,
    ROLLED_BACK_EVENT,
    RegistryError,
    alias_history,
    alias_holder,
    emit_alias_event,
    model_resource_id,
    move_alias,
    quote_filter_value,
    require_version,
    write_alias_history,
)
from knot_prefect.tracking.scoring import Task

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.monitoring.shadow import ShadowComparison
    from knot_prefect.tracking.approval import ApprovalOutcome

SOURCE_TAG = "knot.source_uri"


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
        approval: The reviewer's answer when ``approval=`` asked for one, else None.
        refused: Why the shadow evidence did not allow the move, else None.
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
    approval: str | None = None
    refused: str | None = None

    @property
    def decision(self) -> str:
        """``"promoted"``, ``"already-holder"``, ``"refused"`` (shadow evidence),
        ``"not-approved"`` or ``"kept-champion"``."""
        if self.promoted:
            return "promoted"
        if self.champion_version == self.challenger_version:
            return "already-holder"
        if self.refused is not None:
            return "refused"
        if self.approval is not None:
            return "not-approved"
        return "kept-champion"


@dataclass(frozen=True)
class AliasMove:
    """The outcome of ``rollback``: where an alias pointed before and after."""

    name: str
    alias: str
    from_version: int | None
    to_version: int


# -- register ------------------------------------------------------------------------
def register_model_version(
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
        log_in_run(f"{model_uri} is already version {existing.version} of {name!r}")
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
    log_in_run(f"Registered {model_uri} as version {ref.version} of {name!r}")
    return ref


register_model = task(name="register-model", cache_policy=NO_CACHE)(register_model_version)


def _version_with_source(client: MlflowClient, name: str, model_uri: str) -> ModelVersionRef | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{quote_filter_value(name)}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get(SOURCE_TAG) == model_uri:
            return ModelVersionRef(name, int(version.version), model_uri, version.run_id)
    return None


# -- promote -------------------------------------------------------------------------
def promote_model(
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
    approval: str | timedelta | None = None,
    evidence: Mapping[str, Any] | None = None,
    shadow: ShadowComparison | None = None,
    min_shadow_requests: int | None = None,
    max_disagreement: float | None = None,
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
        approval: How long a human has to approve a move (e.g. ``"4h"``): before the
            alias moves, the flow run pauses with a Prefect input form showing the
            evidence (see :mod:`knot_prefect.tracking.approval`); a rejection or no
            answer in time keeps the alias where it is. None moves without asking.
        evidence: More rows for the approval form, e.g. the latest drift.
        shadow: The challenger's shadow comparison (the ``shadow_comparison`` task),
            shown in the approval form and checked against the two bounds below.
        min_shadow_requests: Refuse the move unless the challenger was shadowed on at
            least this many requests.
        max_disagreement: Refuse the move when the challenger disagreed with the served
            model on more than this fraction of the shadowed requests.

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
    require_version(client, name, challenger)
    metric = metric or DEFAULT_METRIC.get(task, "")
    higher = default_direction(metric) if higher_is_better is None else higher_is_better
    champion = alias_holder(client, name, alias)

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

    refused = None
    if promoted and (min_shadow_requests is not None or max_disagreement is not None):
        refused = (shadow.refusal(challenger, min_shadow_requests, max_disagreement)
                   if shadow is not None else
                   f"no shadow evidence for {name} v{challenger}: serve it with "
                   "`knot serve --shadow ALIAS`, then pass the shadow_comparison result "
                   "as shadow=")
        if refused is not None:
            promoted, reason = False, f"refused: {refused}"
    answer = None
    if promoted and approval is not None:
        shown = {**(evidence or {}), **({f"shadow {k}": v for k, v in shadow.to_dict().items()}
                                        if shadow is not None else {})}
        answer = _ask_approval(name, alias, challenger, champion, metric, challenger_score,
                               champion_score, reason, approval, shown)
        promoted = answer.approved
        reason = f"{reason}; {answer.describe()}"
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
        approval=None if answer is None else answer.describe(),
        refused=refused,
    )
    if promoted:
        move_alias(client, name, alias, champion, challenger)
    _record_decision(client, decision, min_delta)
    _report_promotion(decision)
    if promoted:
        emit_alias_event(
            PROMOTED_EVENT,
            name,
            alias,
            challenger,
            {"previous_version": champion, **_scores(decision)},
        )
    log_in_run(f"{name!r} {alias!r}: {decision.decision} - {reason}")
    return decision


promote = task(name="promote", cache_policy=NO_CACHE)(promote_model)


def _ask_approval(
    name: str, alias: str, challenger: int, champion: int | None, metric: str,
    challenger_score: float | None, champion_score: float | None, reason: str,
    approval: str | timedelta, evidence: Mapping[str, Any] | None,
) -> ApprovalOutcome:
    from knot_prefect.durations import parse_duration
    from knot_prefect.tracking.approval import ask_approval

    shown = {
        "challenger": f"version {challenger}, {metric} = {challenger_score}",
        "champion": "none" if champion is None else
        f"version {champion}, {metric} = {champion_score}",
        "reason": reason,
        **(evidence or {}),
    }
    return ask_approval(f"Promote {name} version {challenger} to @{alias}?", shown,
                        parse_duration(approval, "approval"))


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
def rollback_alias(
    name: str,
    alias: str = "champion",
    tracking: MLflowTracking | str | None = None,
    reason: str | None = None,
) -> AliasMove:
    """Point ``alias`` back at the version that held it before the last promotion.

    Args:
        name: Registered model name.
        alias: The alias to move back.
        tracking: ``MLflowTracking`` block, its document name, or None for the embedded store.
        reason: Why, e.g. the checks a watched champion failed; kept in the event's
            payload, the artifact and the restored version's rollback tag.

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
    holder = alias_holder(client, name, alias)
    history = alias_history(client, name, alias)
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
    require_version(client, name, target)
    write_alias_history(client, name, alias, history)
    client.set_registered_model_alias(name, alias, str(target))
    client.set_model_version_tag(
        name,
        str(target),
        f"knot.rollback.{alias}",
        f"restored from version {holder} at "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
        + (f": {reason}" if reason else ""),
    )
    move = AliasMove(name=name, alias=alias, from_version=holder, to_version=target)
    emit_alias_event(ROLLED_BACK_EVENT, name, alias, target,
                     {"previous_version": holder, "reason": reason})
    _report_rollback(move, reason)
    log_in_run(f"{name!r} {alias!r} rolled back from version {holder} to {target}"
               + (f": {reason}" if reason else ""))
    return move


rollback = task(name="rollback", cache_policy=NO_CACHE)(rollback_alias)


def _report_rollback(move: AliasMove, reason: str | None) -> None:
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return
    create_markdown_artifact(
        key="model-rollback",
        markdown=(
            f"### {move.name} `@{move.alias}` rolled back\n\n"
            f"from version {move.from_version} to version {move.to_version}."
            + (f"\n\nWhy: {reason}." if reason else "")
        ),
        description=f"Rollback of {move.name}@{move.alias}.",
    )


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
    "promote_model",
    "register_model",
    "register_model_version",
    "rollback",
    "rollback_alias",
]
