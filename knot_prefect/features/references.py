"""Resolve ``features_or_service`` arguments and explain unknown references."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from knot_prefect.features.errors import FeatureReferenceError

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

FeaturesOrService = Union[str, Sequence[str], "FeatureService"]


def feature_catalog(store: FeatureStore) -> dict[str, list[str]]:
    """Feature names by view (regular and on-demand views) from the cached registry."""
    catalog: dict[str, list[str]] = {}
    views = [*store.list_feature_views(), *store.list_on_demand_feature_views()]
    for view in views:
        catalog[view.name] = [field.name for field in view.features]
    return catalog


def describe_closest(name: str, candidates: Sequence[str]) -> str:
    """Suggest the existing names closest to ``name`` (or list some when none is close).

    Examples:
        >>> describe_closest("customer_activty", ["customer_activity", "orders"])
        "did you mean 'customer_activity'?"
    """
    matches = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if matches:
        return "did you mean " + " or ".join(repr(match) for match in matches) + "?"
    shown = ", ".join(repr(candidate) for candidate in sorted(candidates)[:10])
    return f"existing: {shown}" if shown else "the registry holds none; run feast_apply first."


def unknown_references(store: FeatureStore, references: Sequence[str]) -> list[str]:
    """Describe each reference that does not exist, with the closest existing names."""
    catalog = feature_catalog(store)
    all_references = [f"{view}:{feature}" for view, names in catalog.items() for feature in names]
    problems = []
    for reference in references:
        view, _, feature = reference.partition(":")
        view = view.split("@", 1)[0]
        if not feature:
            problems.append(
                f"{reference!r} is not of the form 'view:feature' "
                f"({describe_closest(reference, all_references)})"
            )
        elif view not in catalog:
            problems.append(
                f"{reference!r}: no feature view {view!r} ({describe_closest(view, list(catalog))})"
            )
        elif feature not in catalog[view]:
            problems.append(
                f"{reference!r}: no such feature ({describe_closest(reference, all_references)})"
            )
    return problems


def reference_error(store: FeatureStore, references: Sequence[str]) -> FeatureReferenceError | None:
    """A ready-to-raise error for unknown references, or ``None`` when all exist."""
    problems = unknown_references(store, references)
    if not problems:
        return None
    return FeatureReferenceError(
        f"Unknown feature reference(s) in Feast project {store.project!r}: " + "; ".join(problems)
    )


def resolve_features(
    store: FeatureStore, features_or_service: FeaturesOrService, validate: bool = True
) -> list[str] | FeatureService:
    """Turn a feature service name, a service, or ``view:feature`` references into Feast's form.

    Args:
        store: The open store.
        features_or_service: A ``FeatureService``, its name, one ``"view:feature"``
            reference or a list of them.
        validate: Check that each reference exists (one cached registry read).

    Returns:
        The ``FeatureService`` or the list of references.

    Raises:
        FeatureReferenceError: For unknown services, views or features, listing the
            closest existing names.
    """
    from feast import FeatureService

    if isinstance(features_or_service, FeatureService):
        return features_or_service
    if isinstance(features_or_service, str) and ":" not in features_or_service:
        return feature_service(store, features_or_service)
    references = (
        [features_or_service] if isinstance(features_or_service, str) else list(features_or_service)
    )
    if not references:
        raise FeatureReferenceError(
            "No features requested: pass 'view:feature' references or a feature service name."
        )
    if validate and (error := reference_error(store, references)) is not None:
        raise error
    return references


def feature_service(store: FeatureStore, name: str) -> FeatureService:
    """Look up a feature service by name, explaining a miss."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        services = [service.name for service in store.list_feature_services()]
        raise FeatureReferenceError(
            f"No feature service {name!r} in Feast project {store.project!r} "
            f"({describe_closest(name, services)}). To request features directly pass a list of "
            "'view:feature' references."
        ) from None


def views_of(store: FeatureStore, features: list[str] | FeatureService) -> list[str]:
    """The feature view names a retrieval reads."""
    if isinstance(features, list):
        return sorted({reference.split(":", 1)[0].split("@", 1)[0] for reference in features})
    return sorted(projection.name for projection in features.feature_view_projections)
