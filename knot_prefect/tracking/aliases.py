"""Model aliases with knot's bookkeeping, and the events their moves emit.

Each move of an alias is appended to a registered-model tag
(``knot.alias_history.<alias>``, a JSON list of versions whose last entry is the current
holder), which is what a rollback reads; each move emits a Prefect event
(``knot.model.promoted`` or ``knot.model.rolled-back``) about the resource
``knot.mlflow.registered-model.<name>``, which deployment triggers match on.

Examples:
    >>> model_resource_id("churn")
    'knot.mlflow.registered-model.churn'
    >>> HISTORY_TAG.format(alias="champion")
    'knot.alias_history.champion'
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import KnotError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

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


# -- aliases and their history ---------------------------------------------------------
def quote_filter_value(value: str) -> str:
    """``value`` with single quotes escaped for an MLflow search filter."""
    return value.replace("'", "\\'")


def require_model(client: MlflowClient, name: str) -> Any:
    """The registered model ``name``; an error listing the registered models if none."""
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


def require_version(client: MlflowClient, name: str, version: int) -> None:
    """Raise an error listing the versions of ``name`` unless ``version`` exists."""
    from mlflow.exceptions import MlflowException

    require_model(client, name)
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        found = client.search_model_versions(f"name = '{quote_filter_value(name)}'")
        versions = sorted(int(v.version) for v in found)
        raise RegistryError(
            f"{name!r} has no version {version}; its versions are {versions}."
        ) from None


def set_alias(client: MlflowClient, name: str, alias: str, version: int) -> int | None:
    """Point ``alias`` of ``name`` at ``version`` with knot's bookkeeping; retry-safe.

    The move is recorded in the alias history (so a rollback can undo it) and
    emits ``knot.model.promoted``, as a promotion does; pointing the
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
    previous = alias_holder(client, name, alias)
    if previous != version:
        move_alias(client, name, alias, previous, version)
        emit_alias_event(PROMOTED_EVENT, name, alias, version, {"previous_version": previous})
    return previous


def alias_holder(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version ``alias`` points at, or None."""
    model = require_model(client, name)
    holder = model.aliases.get(alias)
    return None if holder is None else int(holder)


def alias_history(client: MlflowClient, name: str, alias: str) -> list[int]:
    """The versions that held ``alias``, oldest first, as knot recorded them."""
    model = require_model(client, name)
    raw = model.tags.get(HISTORY_TAG.format(alias=alias))
    return [int(v) for v in json.loads(raw)] if raw else []


def write_alias_history(
    client: MlflowClient, name: str, alias: str, history: list[int]
) -> None:
    """Store the alias history (its last ``HISTORY_LIMIT`` entries) on the model."""
    client.set_registered_model_tag(
        name, HISTORY_TAG.format(alias=alias), json.dumps(history[-HISTORY_LIMIT:])
    )


def move_alias(
    client: MlflowClient, name: str, alias: str, holder: int | None, new_holder: int
) -> None:
    """Point ``alias`` at ``new_holder``, appending the move to the alias history."""
    history = alias_history(client, name, alias)
    if holder is not None and (not history or history[-1] != holder):
        history.append(holder)  # The alias was set outside knot: remember who held it.
    history.append(new_holder)
    write_alias_history(client, name, alias, history)
    client.set_registered_model_alias(name, alias, str(new_holder))


# -- events ---------------------------------------------------------------------------
def emit_alias_event(
    event: str, name: str, alias: str, version: int, payload: dict[str, Any]
) -> None:
    """Emit ``event`` about the registered model ``name`` and its ``alias``."""
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
