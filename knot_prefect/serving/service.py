"""One prediction: entity keys -> features (read, or sent) -> contract -> model -> answer.

Features come from a :class:`~knot_prefect.serving.features.FeatureSource` (a Feast
online store, or the latest row per key of a warehouse table); an entity may also send
every feature value itself, which is then scored as sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knot_prefect.errors import ConfigurationError
from knot_prefect.serving.answers import json_value, score_frame
from knot_prefect.serving.errors import (
    ContractViolationError,
    FeatureStoreUnavailableError,
    ServingError,
    StaleFeaturesError,
    UnknownEntityError,
)
from knot_prefect.serving.features import (
    FeaturePlan,
    FeatureSource,
    OnlineRows,
    with_supplied,
)
from knot_prefect.serving.model_holder import ModelHolder, ServedModel
from knot_prefect.serving.schemas import SENT_FEATURES

if TYPE_CHECKING:

    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.serving.settings import ServeSettings
    from knot_prefect.serving.shadow import ShadowScorer

logger = logging.getLogger("knot_prefect.serving")
MASK = "***"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _describe(key: Any) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in key.items())


class PredictionService:
    """Scores entity keys with their features and the model holding an alias.

    Args:
        source: Where features are read (Feast, or a warehouse table).
        holder: The model holder (its first model already loaded).
        contract: Data contract the features (and keys) must satisfy, if any.
        max_feature_age: Oldest acceptable feature age in seconds (None: no limit).
        stale: ``error`` refuses stale features (409); ``flag`` answers and flags them.
        shadow: Scores a sample of the answered requests with a second alias, off the
            response path (see :mod:`knot_prefect.serving.shadow`).
    """

    def __init__(
        self,
        source: FeatureSource,
        holder: ModelHolder,
        contract: DataContract | None = None,
        max_feature_age: float | None = None,
        stale: str = "error",
        shadow: ShadowScorer | None = None,
    ) -> None:
        self.source = source
        self.shadow = shadow
        self.holder = holder
        self.contract = contract
        self.max_feature_age = max_feature_age
        self.stale = stale
        self.sensitive = frozenset(contract.sensitive_columns if contract else ())
        self.contract_version = contract.version if contract else None
        if contract is not None:
            self._check_contract_columns(holder.current.plan)

    # -- building ------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: ServeSettings) -> PredictionService:
        """Open the feature source, load the model the alias points at, read the contract.

        Raises:
            ConfigurationError: Naming the block, model, alias or feature that is wrong.
        """
        source = open_source(settings)
        tracking = resolve_tracking_setting(settings.tracking)
        contract = resolve_contract(settings.contract) if settings.contract else None
        holder = ModelHolder(settings.model_name, settings.alias, tracking, source.plan,
                             refresh=settings.refresh)
        holder.refresh()
        shadow = open_shadow(settings, tracking, holder) if settings.shadow else None
        if shadow is not None:
            shadow.start()  # a shadow that cannot load is refused now, like the model
        return cls(source, holder, contract, settings.max_feature_age, settings.stale,
                   shadow)

    def _check_contract_columns(self, plan: FeaturePlan) -> None:
        assert self.contract is not None
        offered = {key.name for key in plan.join_keys} | set(plan.view_of)
        absent = [str(name) for name in self.contract.schema().columns if name not in offered]
        if absent:
            raise ConfigurationError(
                f"DataContract {self.contract.contract_name!r} checks the columns {absent}, "
                f"which a request does not carry (entity keys and features: {sorted(offered)}); "
                "serve with a contract on the keys and features only."
            )

    # -- serving -------------------------------------------------------------------------
    def predict(self, keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Score entity keys; the answer is JSON-ready (see ``PredictResponse``).

        Raises:
            UnknownEntityError: 404, naming keys the online store does not hold.
            StaleFeaturesError: 409 under ``stale="error"``, naming the view and its age.
            ContractViolationError: 422, naming each failed column and check.
        """
        answer = self.predict_many([keys])[0]
        if isinstance(answer, ServingError):
            raise answer
        return answer

    def predict_many(
        self, requests: Sequence[Sequence[dict[str, Any]]]
    ) -> list[dict[str, Any] | ServingError]:
        """Score several requests together: one online read and one model call in all.

        Each request is checked on its own, so one request's unknown key or stale view
        fails that request only. All of them are scored by the same model version.

        Returns:
            Per request, its answer or the error that refused it.
        """
        served = self.holder.current  # the model these requests finish with
        plan = served.plan
        scored_at = datetime.now(UTC)
        results: list[dict[str, Any] | ServingError | None] = [None] * len(requests)
        columns: list[dict[str, list[Any]]] = []
        sent: list[list[dict[str, Any] | None]] = []
        entities: list[list[dict[str, Any]]] = []
        for index, request in enumerate(requests):
            entities.append([{key.name: entity[key.name] for key in plan.join_keys}
                             for entity in request])
            columns.append({key.name: [entity[key.name] for entity in request]
                            for key in plan.join_keys})
            sent.append([])
            try:
                self._check_keys(plan, columns[index])
                sent[index] = [_sent_features(plan, entity) for entity in request]
            except ServingError as exc:
                results[index] = exc
        requests = entities  # the keys alone, as answers and messages name them
        pending = [index for index, result in enumerate(results) if result is None]
        if not pending:
            return results  # type: ignore[return-value]
        values = [item for index in pending for item in sent[index]]
        lookup = [position for position, item in enumerate(values) if item is None]
        merged = {key.name: [value for index in pending for value in columns[index][key.name]]
                  for key in plan.join_keys}
        try:
            looked_up = (
                self.source.read(plan, {name: [column[p] for p in lookup]
                                        for name, column in merged.items()})
                if lookup else OnlineRows(columns={}, event_times={})
            )
        except ServingError as exc:
            return [result if result is not None else exc for result in results]
        except Exception as exc:
            from knot_prefect.urls import mask_urls

            # A driver's text can hold the connection URL: mask it before it is answered.
            failure = FeatureStoreUnavailableError(
                f"Reading {self.source.description} failed: {type(exc).__name__}: "
                f"{mask_urls(str(exc))}"
            )
            return [result if result is not None else failure for result in results]
        rows = with_supplied(looked_up, values, plan)
        start = 0
        accepted: list[tuple[int, OnlineRows, dict[str, list[float | None]], list[list[str]]]] = []
        for index in pending:
            keys = requests[index]
            part = rows.slice(start, start + len(keys))
            start += len(keys)
            try:
                self._check_present(keys, part)
                ages, stale_views = self._ages(keys, part, scored_at)
                if self.contract is not None:
                    self._validate(columns[index], part)
            except ServingError as exc:
                results[index] = exc
                continue
            accepted.append((index, part, ages, stale_views))
        if accepted:
            started = time.perf_counter()
            outputs = self._score(served, [(columns[i], part) for i, part, _, _ in accepted])
            primary_ms = (time.perf_counter() - started) * 1000
            lineage = {
                "model": {"name": served.name, "version": served.version,
                          "alias": served.alias, "uri": served.uri},
                "feature_views": [{"name": view, "version": plan.view_versions[view]}
                                  for view in plan.views],
                "feature_view_versions": plan.lineage,
                "contract_version": self.contract_version,
            }
            scored_at_text = scored_at.isoformat()
            offset = 0
            for index, part, ages, stale_views in accepted:
                keys = requests[index]
                results[index] = self._answer(keys, part, ages, stale_views,
                                              outputs[offset:offset + len(keys)],
                                              lineage, scored_at)
                if self.shadow is not None:  # queued without waiting; never fails
                    self.shadow.offer(keys, columns[index], part.columns,
                                      outputs[offset:offset + len(keys)], served.version,
                                      primary_ms, scored_at_text)
                offset += len(keys)
        return results  # type: ignore[return-value]

    def _answer(
        self,
        keys: Sequence[dict[str, Any]],
        rows: OnlineRows,
        ages: dict[str, list[float | None]],
        stale_views: list[list[str]],
        outputs: list[Any],
        lineage: dict[str, Any],
        scored_at: datetime,
    ) -> dict[str, Any]:
        predictions = [
            {
                "entity": dict(entity),
                **outputs[i],
                "features": {
                    name: MASK if name in self.sensitive else json_value(values[i])
                    for name, values in rows.columns.items()
                },
                "feature_timestamps": {
                    view: _iso(times[i]) for view, times in rows.event_times.items()
                },
                "feature_age_seconds": {view: ages[view][i] for view in ages},
                "stale_views": stale_views[i],
            }
            for i, entity in enumerate(keys)
        ]
        return {
            "predictions": predictions,
            **lineage,
            "stale": any(stale_views),
            "scored_at": scored_at.isoformat(),
        }

    def _check_keys(self, plan: FeaturePlan, columns: dict[str, list[Any]]) -> None:
        for key in plan.join_keys:
            for value in columns[key.name]:
                if key.kind == "int" and not -(2 ** (key.bits - 1)) <= value < 2 ** (key.bits - 1):
                    raise UnknownEntityError(
                        f"Unknown entity: {key.name}={value} is outside the {key.bits}-bit "
                        "integer range of the store's keys, so no features exist for it.",
                        {"unknown": [{key.name: value}], "incomplete": []},
                    )
                if isinstance(value, str):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:
                        raise ContractViolationError(
                            f"Entity key {key.name} must be valid UTF-8 text.",
                            {"field": key.name},
                        ) from None

    def _check_present(self, keys: Sequence[dict[str, Any]], rows: OnlineRows) -> None:
        unknown: list[dict[str, Any]] = []
        incomplete: list[dict[str, Any]] = []
        views = len(rows.event_times)
        lacking: dict[int, list[str]] = {}
        for view, positions in rows.missing.items():
            for position in positions:
                lacking.setdefault(position, []).append(view)
        for position, missing_views in sorted(lacking.items()):
            if len(missing_views) == views:
                unknown.append(keys[position])
            else:
                incomplete.append({"entity": keys[position], "views": sorted(missing_views)})
        if unknown or incomplete:
            parts = []
            if unknown:
                parts.append("no features for " + "; ".join(_describe(k) for k in unknown))
            if incomplete:
                parts.append("; ".join(
                    f"{_describe(item['entity'])} has no values in view(s) "
                    f"{', '.join(item['views'])}" for item in incomplete
                ))
            raise UnknownEntityError(
                "Unknown entity: " + "; ".join(parts) + ". " + self.source.absent_hint,
                {"unknown": unknown, "incomplete": incomplete},
            )
        nulls = [
            {"entity": keys[i], "feature": name}
            for name, values in rows.columns.items() for i, value in enumerate(values)
            if value is None
        ]
        if nulls:
            raise ContractViolationError(
                f"No value (null) in {self.source.description} for "
                + "; ".join(f"{item['feature']} of {_describe(item['entity'])}" for item in nulls)
                + ". The model needs every feature: fix the source rows (and materialize "
                "them again when they come from a feature store).",
                {"null_features": nulls},
            )

    def _ages(
        self, keys: Sequence[dict[str, Any]], rows: OnlineRows, scored_at: datetime
    ) -> tuple[dict[str, list[float | None]], list[list[str]]]:
        ages: dict[str, list[float | None]] = {}
        stale: list[list[str]] = [[] for _ in keys]
        limit = self.max_feature_age
        problems: list[dict[str, Any]] = []
        for view, times in rows.event_times.items():
            view_ages: list[float | None] = []
            for i, stamp in enumerate(times):
                age = round((scored_at - stamp).total_seconds(), 3) if stamp else None
                view_ages.append(age)
                if limit is not None and age is not None and age > limit:
                    stale[i].append(view)
                    problems.append({"entity": keys[i], "view": view, "age_seconds": age,
                                     "max_age_seconds": limit})
            ages[view] = view_ages
        if problems and self.stale == "error":
            shown = "; ".join(
                f"view {p['view']} for {_describe(p['entity'])} is {p['age_seconds']:.0f}s old"
                for p in problems[:5]
            )
            raise StaleFeaturesError(
                f"Stale features (max age {limit:.0f}s): {shown}. Materialize the views, or "
                "raise --max-feature-age.",
                {"stale": problems},
            )
        return ages, stale

    def _validate(self, columns: dict[str, list[Any]], rows: OnlineRows) -> None:
        import pandas as pd

        from knot_prefect.contracts.engine import run_schema, summarize

        assert self.contract is not None
        schema = self.contract.schema()
        frame = pd.DataFrame({**columns, **rows.columns})
        result = run_schema(frame, schema)
        if result.passed:
            return
        failed = [
            {"column": outcome.column, "check": outcome.check, "failures": outcome.failures,
             "examples": list(outcome.examples)}
            for outcome in summarize(schema, [result.failure_cases], sorted(self.sensitive))
            if outcome.failures
        ]
        raise ContractViolationError(
            f"The features break DataContract {self.contract.contract_name!r}: "
            + "; ".join(f"column {f['column']} failed {f['check']} ({f['failures']} row(s))"
                        for f in failed) + ".",
            {"contract_version": self.contract_version, "failed_checks": failed},
        )

    def _score(
        self, served: ServedModel, parts: list[tuple[dict[str, list[Any]], OnlineRows]]
    ) -> list[Any]:
        import pandas as pd

        # Every model input gets one value per row, so any input column gives the count.
        values: dict[str, list[Any]] = {name: [] for name in served.inputs}
        for keys, rows in parts:
            merged = {**keys, **rows.columns}
            for name in served.inputs:
                values[name].extend(merged[name])
        return score_frame(served, pd.DataFrame(values))

    # -- health --------------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """Whether a model is loaded and the feature source answers a read.

        Returns:
            ``{"ready": bool, "model": ..., "feature_store": ...}``.
        """
        model: dict[str, Any]
        if self.holder.ready:
            served = self.holder.current
            model = {"ok": True, "name": served.name, "alias": served.alias,
                     "version": served.version}
        else:
            model = {"ok": False, "error": self.holder.last_error or "not loaded yet"}
        try:
            plan = self.holder.current.plan if self.holder.ready else None
            if plan is not None:
                probe = {key.name: [_probe_value(key.kind)] for key in plan.join_keys}
                self.source.read(plan, probe)
            features: dict[str, Any] = {"ok": True, "source": self.source.description}
        except Exception as exc:
            features = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ready": bool(model["ok"] and features["ok"]), "model": model,
                "feature_store": features}

    def start(self) -> None:
        """Start following the alias (and the shadow's)."""
        self.holder.start()
        if self.shadow is not None:
            self.shadow.start()

    def stop(self) -> None:
        """Stop following the alias; the shadow writes what it has queued."""
        self.holder.stop()
        if self.shadow is not None:
            self.shadow.stop()


def open_shadow(settings: ServeSettings, tracking: MLflowTracking, primary: ModelHolder
                ) -> ShadowScorer:
    """The shadow scorer the settings ask for (its process not started yet).

    Raises:
        ConfigurationError: Naming a warehouse block that does not exist.
    """
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.documents.defaults import LOCAL_WAREHOUSE
    from knot_prefect.serving.shadow import BlockCopy, ShadowScorer, ShadowTarget

    assert settings.shadow is not None
    plan = primary.current.plan
    target = ShadowTarget(
        model=settings.model_name, alias=settings.shadow, primary_alias=settings.alias,
        tracking=BlockCopy.of(tracking),
        warehouse=BlockCopy.of(resolve_block(settings.warehouse or LOCAL_WAREHOUSE,
                                             Warehouse, parameter="warehouse")),
        table=settings.shadow_table,
        offered=frozenset(key.name for key in plan.join_keys) | frozenset(plan.view_of),
        refresh=settings.refresh)
    return ShadowScorer(target, sample=settings.shadow_sample,
                        queue_size=settings.shadow_queue)


def _sent_features(plan: FeaturePlan, entity: dict[str, Any]) -> dict[str, Any] | None:
    """The feature values an entity sent itself, or None when it sent none.

    Raises:
        ContractViolationError: When they lack a feature of the model serving now (the
            alias moved to a model with other inputs than the request schema's).
    """
    keys = {key.name for key in plan.join_keys}
    sent = entity.get(SENT_FEATURES) if SENT_FEATURES not in keys else None
    if sent is None:
        return None
    lacking = [name for name in plan.view_of if name not in sent]
    if lacking:
        raise ContractViolationError(
            f"The features sent for {_describe({k: entity[k] for k in keys})} lack "
            f"{lacking}: send every input of the model serving now "
            f"({sorted(plan.view_of)}), or only the keys to have them read.",
            {"missing_features": lacking},
        )
    return {name: sent[name] for name in plan.view_of}


def _probe_value(kind: str) -> Any:
    return {"int": 0, "float": 0.0, "bool": False}.get(kind, "knot-readiness-probe")


# -- settings -> blocks ------------------------------------------------------------------
def open_source(settings: ServeSettings) -> FeatureSource:
    """The feature source the settings name: a Feast store, or a warehouse table.

    Raises:
        ConfigurationError: Naming the block document that is missing.
    """
    if settings.features:
        from knot_prefect.serving.feast_source import FeastSource

        store = resolve_features(settings.features).get_store()
        return FeastSource(store, settings.feature_service)
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.documents.defaults import LOCAL_WAREHOUSE
    from knot_prefect.serving.warehouse_source import WarehouseSource

    assert settings.source is not None  # the settings hold features or a source
    return WarehouseSource(resolve_block(settings.warehouse or LOCAL_WAREHOUSE, Warehouse),
                           settings.source, settings.key_columns or [],
                           settings.timestamp_column)


def resolve_features(value: str) -> FeastFeatureStore:
    """A ``FeastFeatureStore`` from a block document name or a Feast repo folder."""
    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.blocks.resolve import resolve_block

    folder = Path(value).expanduser()
    if (folder / "feature_store.yaml").is_file():
        return FeastFeatureStore(repo_path=str(folder))
    return resolve_block(value, FeastFeatureStore)


def resolve_tracking_setting(value: str | None) -> MLflowTracking:
    """An ``MLflowTracking`` from a block document name, a tracking URI, or the default."""
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tracking.resolve import resolve_tracking

    if value and ("://" in value or value.startswith("sqlite:")):
        return MLflowTracking(tracking_uri=value)
    return resolve_tracking(value or None)


def resolve_contract(value: str) -> DataContract:
    """A ``DataContract`` from a block document name or a Pandera YAML file."""
    from knot_prefect.blocks.contract import DataContract
    from knot_prefect.blocks.resolve import resolve_block

    path = Path(value).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return DataContract(schema_yaml=path.read_text())
    return resolve_block(value, DataContract)
