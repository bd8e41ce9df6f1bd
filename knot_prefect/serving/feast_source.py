"""Features from a Feast online store: the plan from the store's views, one online read.

The plan is worked out once per model version (off the request path): the model's
input names are looked up in the store's feature views, or a feature service is used.
A request then costs one ``get_online_features`` call whose protobuf answer is read
directly, without building a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.serving.features import FeaturePlan, JoinKey, OnlineRows

if TYPE_CHECKING:
    from feast import FeatureStore

# feast.protos.feast.serving.ServingService_pb2.FieldStatus
_PRESENT, _NULL_VALUE, _NOT_FOUND, _OUTSIDE_MAX_AGE = 1, 2, 3, 4


class FeastSource:
    """A Feast online store as the service's feature source.

    Args:
        store: The open Feast store.
        feature_service: Read this service's features instead of matching input names.
    """

    absent_hint = "Check the key, or materialize the feature views for it."

    def __init__(self, store: FeatureStore, feature_service: str | None = None) -> None:
        self.store = store
        self.feature_service = feature_service
        self.description = f"Feast project {store.project!r}"

    def plan(self, inputs: Sequence[str]) -> FeaturePlan:
        """The online features feeding ``inputs`` (see :func:`plan_features`)."""
        return plan_features(self.store, inputs, self.feature_service)

    def read(self, plan: FeaturePlan, keys: Mapping[str, Sequence[Any]]) -> OnlineRows:
        """One online read for the batch (see :func:`read_online`)."""
        return read_online(self.store, plan, keys)


def _join_key_of(column: Any) -> JoinKey:
    from feast.types import Bool, Bytes, Float32, Float64, Int32, Int64, String

    kinds: dict[Any, tuple[str, int]] = {
        Int64: ("int", 64), Int32: ("int", 32), String: ("str", 0), Float64: ("float", 0),
        Float32: ("float", 0), Bool: ("bool", 0), Bytes: ("bytes", 0),
    }
    kind, bits = kinds.get(column.dtype, ("str", 0))
    return JoinKey(name=column.name, kind=kind, bits=bits or 64)


def _view_hash(view: Any) -> str:
    import hashlib

    spec = view.to_proto().spec.SerializeToString()
    return hashlib.sha256(spec).hexdigest()[:12]


def plan_features(
    store: FeatureStore, inputs: Sequence[str], feature_service: str | None = None
) -> FeaturePlan:
    """Work out which online features feed a model.

    Args:
        store: The open Feast store.
        inputs: The model's input names (from its signature).
        feature_service: Read this service's features instead of matching names.

    Returns:
        The plan.

    Raises:
        ConfigurationError: When an input is in no view (or in several), naming it and
            the views, or when the service lacks an input.
    """
    views = {view.name: view for view in store.list_feature_views() if view.online}
    if not views:
        raise ConfigurationError(
            f"Feast project {store.project!r} has no online feature view: apply the repo "
            "(knot's feast_apply task or `feast apply`) and materialize it first."
        )
    join_names = {column.name for view in views.values() for column in view.entity_columns}
    if feature_service:
        from knot_prefect.features.references import feature_service as find_service

        service = find_service(store, feature_service)
        wanted = [
            (projection.name, feature.name)
            for projection in service.feature_view_projections
            for feature in projection.features
        ]
        offered = {name for _, name in wanted}
        lacking = [name for name in inputs if name not in offered and name not in join_names]
        if lacking:
            raise ConfigurationError(
                f"Feature service {feature_service!r} lacks the model inputs {lacking}; "
                "add them to the service or serve without --feature-service."
            )
        chosen = [(view, name) for view, name in wanted if name in inputs]
    else:
        chosen = []
        for name in inputs:
            holders = sorted(
                view.name for view in views.values() if name in {f.name for f in view.features}
            )
            if len(holders) == 1:
                chosen.append((holders[0], name))
            elif len(holders) > 1:
                raise ConfigurationError(
                    f"Model input {name!r} is a feature of several views ({holders}): name "
                    "the one to read with a feature service (--feature-service)."
                )
            elif name not in join_names:
                raise ConfigurationError(
                    f"Model input {name!r} is in no online feature view of Feast project "
                    f"{store.project!r} (views: {sorted(views)}); add it to a view, or serve "
                    "a model whose inputs are features."
                )
    used = sorted({view for view, _ in chosen})
    keys: dict[str, JoinKey] = {}
    for view_name in used:
        for column in views[view_name].entity_columns:
            keys.setdefault(column.name, _join_key_of(column))
    return FeaturePlan(
        references=tuple(f"{view}:{name}" for view, name in chosen),
        view_of={name: view for view, name in chosen},
        join_keys=tuple(keys[name] for name in sorted(keys)),
        view_versions={view: _view_hash(views[view]) for view in used},
    )


def _python_value(value: Any) -> Any:
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    if kind.endswith("_list_val"):
        return list(getattr(value, kind).val)
    return getattr(value, kind)


def read_online(
    store: FeatureStore, plan: FeaturePlan, keys: Mapping[str, Sequence[Any]]
) -> OnlineRows:
    """Read the plan's features for a batch of entities.

    Args:
        store: The open Feast store.
        plan: What to read.
        keys: Join key -> one value per entity.

    Returns:
        The values, the event time of each view's row and the entities each view lacks.
    """
    response = store.get_online_features(
        features=list(plan.references), entity_rows=dict(keys)
    ).proto
    names = list(response.metadata.feature_names.val)
    columns: dict[str, list[Any]] = {}
    event_times: dict[str, list[datetime | None]] = {}
    missing: dict[str, list[int]] = {}
    for name, result in zip(names, response.results, strict=True):
        view = plan.view_of.get(name)
        if view is None:
            continue  # a join key echoed back
        columns[name] = [_python_value(value) for value in result.values]
        if view not in event_times:
            statuses = list(result.statuses)
            event_times[view] = [
                datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)
                if status in (_PRESENT, _NULL_VALUE) and stamp.seconds else None
                for status, stamp in zip(statuses, result.event_timestamps, strict=True)
            ]
            lacking = [i for i, status in enumerate(statuses)
                       if status in (_NOT_FOUND, _OUTSIDE_MAX_AGE)]
            if lacking:
                missing[view] = lacking
    return OnlineRows(columns=columns, event_times=event_times, missing=missing)
