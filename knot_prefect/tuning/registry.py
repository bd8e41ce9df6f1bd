"""Hand the best trial's model the ``challenger`` alias.

The model is registered with the ``register_model`` task (retry-safe: the same URI is
never registered twice). The alias then moves unconditionally: the search has already
compared the candidates, and ``challenger`` names the candidate that ``promote`` will
later contest against the ``champion``. The move goes through the registry's
``set_alias``, so its history is recorded (``rollback`` works) and the
``knot.model.promoted`` event is emitted as for any move made by ``promote``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

if TYPE_CHECKING:
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking


@dataclass(frozen=True)
class AliasAssignment:
    """Where an alias pointed before and after the search."""

    name: str
    alias: str
    version: int
    previous_version: int | None


def assign_model_alias(
    name: str,
    version: int,
    alias: str,
    tracking: MLflowTracking,
    tags: dict[str, str] | None = None,
) -> AliasAssignment:
    """Point ``alias`` of registered model ``name`` at ``version``; retry-safe.

    Args:
        name: Registered model name.
        version: The version that receives the alias.
        alias: The alias, e.g. ``"challenger"``; refusing ``"champion"`` is the
            caller's business.
        tracking: The store holding the registry.
        tags: Tags written on the version.

    Returns:
        The assignment, with the version that held the alias before.
    """
    from knot_prefect.run_context import log_in_run
    from knot_prefect.tracking.aliases import set_alias

    client = tracking.get_client()
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, str(version), key, value)
    previous = set_alias(client, name, alias, version)
    log_in_run(f"{name!r} {alias!r} -> version {version} (was {previous})")
    return AliasAssignment(name=name, alias=alias, version=version, previous_version=previous)


assign_alias = task(name="assign-alias", cache_policy=NO_CACHE)(assign_model_alias)


