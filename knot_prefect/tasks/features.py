"""Prefect tasks for the Feast feature lifecycle: apply, materialize, gate, retrieve.

Every task takes the store as a ``FeastFeatureStore`` block, the name of a saved one,
or an open ``feast.FeatureStore``, and reports what it did with a Prefect artifact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext

from knot_prefect.features.entities import DEFAULT_TIMESTAMP_COLUMN, ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.blocks.warehouses.base import Warehouse
    from knot_prefect.features.references import FeaturesOrService
    from knot_prefect.features.store import StoreLike

_fallback_logger = logging.getLogger("knot_prefect.features")


def _logger() -> Any:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return _fallback_logger


def _in_run() -> bool:
    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


def _artifact_key(*parts: str) -> str:
    key = "-".join(parts).lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", key)).strip("-")


def _table_artifact(rows: list[dict[str, Any]], key: str, description: str) -> None:
    # Outside a flow or task run there is nowhere to attach an artifact.
    if _in_run():
        from prefect.artifacts import create_table_artifact

        create_table_artifact(rows, key=key, description=description)


def _markdown_artifact(markdown: str, key: str, description: str) -> None:
    if _in_run():
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown, key=key, description=description)


def apply_feature_repo(store: StoreLike) -> dict[str, Any]:
    """Apply a Feast repo's definitions to its registry and infrastructure.

    The plan (what would change) becomes a markdown artifact ``feast-plan-<project>``.
    When nothing changed, nothing is written.

    Args:
        store: A ``FeastFeatureStore`` block, its document name or a
            ``feast.FeatureStore``; the Python definitions are read from its repo folder.

    Returns:
        ``{"project", "applied", "changes": [{"kind", "object type", "name", "change",
        "properties"}]}``.

    Raises:
        RepoLoadError: When a definitions file does not load (file and line).

    Examples:
        ```python
        from knot_prefect.tasks import feast_apply

        feast_apply("churn-features")
        ```
    """
    from knot_prefect.features.apply import apply_repo
    from knot_prefect.features.repo import load_repo_contents
    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(store)
    contents = load_repo_contents(Path(str(feature_store.repo_path)), feature_store.project)
    result = apply_repo(feature_store, contents)
    logger = _logger()
    if result.applied:
        logger.info(
            "Applied %d change(s) to Feast project %s: %s",
            len(result.changes),
            result.project,
            ", ".join(f"{c.change} {c.object_type} {c.name}" for c in result.changes),
        )
    else:
        logger.info("Feast project %s is up to date; nothing applied.", result.project)
    _markdown_artifact(
        result.to_markdown(),
        key=_artifact_key("feast-plan", result.project),
        description=f"Feast apply plan for project {result.project}",
    )
    return {
        "project": result.project,
        "applied": result.applied,
        "changes": [change.to_row() for change in result.changes],
    }


feast_apply = task(name="feast-apply", cache_policy=NO_CACHE)(apply_feature_repo)


def materialize_views(
    store: StoreLike,
    views: Sequence[str] | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    start: datetime | None = None,
) -> list[dict[str, Any]]:
    """Load feature values into the online store, view by view.

    Progress is logged per view; rows written per view become the table artifact
    ``feast-materialize-<project>``. Incremental runs continue where the previous run
    ended, so running twice for the same ``end`` writes nothing the second time, and
    a retried run resumes at the first view not yet done.

    Args:
        store: A ``FeastFeatureStore`` block, its document name or a ``feast.FeatureStore``.
        views: Feature view names; every online view when ``None``.
        end: End of the window (naive values are UTC); now when ``None``.
        incremental: Continue from each view's last materialization; ``False``
            rewrites ``[start, end)``.
        start: Start of a full (non-incremental) window; ``end - ttl`` when ``None``.

    Returns:
        One dict per view: ``view``, ``start``, ``end``, ``rows``, ``seconds``, ``skipped``.

    Examples:
        ```python
        from knot_prefect.tasks import materialize

        materialize("churn-features", views=["customer_activity"])
        ```
    """
    from knot_prefect.features.materialization import materialize_views
    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(store)
    logger = _logger()
    results = materialize_views(
        feature_store,
        views=views,
        end=end,
        incremental=incremental,
        start=start,
        log=logger.info,
    )
    rows = [result.to_dict() for result in results]
    total = sum(result.rows for result in results)
    logger.info("Materialized %d row(s) across %d view(s).", total, len(results))
    _table_artifact(
        rows,
        key=_artifact_key("feast-materialize", feature_store.project),
        description=f"Rows written to the online store per feature view ({total} in all)",
    )
    return rows


materialize = task(name="feast-materialize", cache_policy=NO_CACHE)(materialize_views)


def check_freshness(
    store: StoreLike,
    views: Sequence[str] | None = None,
    max_age: timedelta | float = timedelta(days=1),
) -> dict[str, float | None]:
    """Fail unless every view was materialized up to at most ``max_age`` ago.

    The age of a view is the time since the end of its latest materialization window.

    Args:
        store: A ``FeastFeatureStore`` block, its document name or a ``feast.FeatureStore``.
        views: Feature view names; every online view when ``None``.
        max_age: The oldest acceptable age (a ``timedelta`` or seconds).

    Returns:
        View name -> age in seconds.

    Raises:
        StaleFeaturesError: Naming each stale view and its age.

    Examples:
        ```python
        from datetime import timedelta
        from knot_prefect.tasks import ensure_fresh

        ensure_fresh("churn-features", max_age=timedelta(hours=6))
        ```
    """
    from knot_prefect.features.errors import StaleFeaturesError
    from knot_prefect.features.freshness import check_fresh, format_age, materialization_ages
    from knot_prefect.features.store import resolve_store

    limit = max_age if isinstance(max_age, timedelta) else timedelta(seconds=float(max_age))
    feature_store, _ = resolve_store(store)
    ages = materialization_ages(feature_store, views)
    rows = [
        {
            "view": name,
            "age": format_age(age),
            "age seconds": age,
            "fresh": age is not None and age <= limit.total_seconds(),
        }
        for name, age in ages.items()
    ]
    _table_artifact(
        rows,
        key=_artifact_key("feast-freshness", feature_store.project),
        description=(
            "Age of each feature view's materialization "
            f"(limit {format_age(limit.total_seconds())})"
        ),
    )
    try:
        return check_fresh(ages, limit)
    except StaleFeaturesError as exc:
        _logger().error(str(exc))
        raise


ensure_fresh = task(name="feast-ensure-fresh", cache_policy=NO_CACHE)(check_freshness)


def _join_keys(feature_store: Any, view_names: Sequence[str]) -> list[str]:
    keys: list[str] = []
    catalog = {view.name: view for view in feature_store.list_feature_views()}
    for name in view_names:
        view = catalog.get(name)
        if view is None:
            continue  # on-demand views read their keys from source views
        for column in view.entity_columns:
            if column.name not in keys:
                keys.append(column.name)
    return keys


def get_training_set(
    store: StoreLike,
    entities: pd.DataFrame | str,
    features_or_service: FeaturesOrService,
    warehouse: Warehouse | str | None = None,
    params: Mapping[str, Any] | None = None,
    timestamp_column: str = DEFAULT_TIMESTAMP_COLUMN,
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """Build a point-in-time correct training set with Feast's historical retrieval.

    For each entity row, each feature takes its latest value recorded at or before the
    row's timestamp (and within the view's ttl): a value recorded later never leaks in.

    Args:
        store: A ``FeastFeatureStore`` block, its document name or a ``feast.FeatureStore``.
        entities: A frame with the join keys and ``timestamp_column``, or SQL run on
            ``warehouse`` that returns one.
        features_or_service: ``"view:feature"`` references, or a feature service
            (object or name).
        warehouse: The warehouse block (or its document name) for SQL ``entities``.
        params: Values bound to ``:name`` placeholders in the SQL.
        timestamp_column: The column holding each row's point in time.
        full_feature_names: Prefix feature columns with their view name.

    Returns:
        The entity rows with one column per feature.

    Raises:
        FeatureReferenceError: For unknown features, listing the closest names.
        EntityFrameError: When the timestamp or join-key columns are missing.

    Examples:
        ```python
        from knot_prefect.tasks import training_set

        frame = training_set(
            "churn-features",
            "SELECT customer_id, snapshot_at AS event_timestamp, churned FROM labels",
            ["customer_activity:orders_30d", "customer_activity:spend_30d"],
            warehouse="local-warehouse",
        )
        ```
    """
    from knot_prefect.features.entities import prepare_entity_frame, restore_entity_rows
    from knot_prefect.features.references import resolve_features, views_of
    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(store)
    features = resolve_features(feature_store, features_or_service)
    if isinstance(entities, str):
        entities = _read_entities(entities, warehouse, params)
    view_names = views_of(feature_store, features)
    frame = prepare_entity_frame(entities, timestamp_column, _join_keys(feature_store, view_names))
    if timestamp_column != DEFAULT_TIMESTAMP_COLUMN:
        # Feast picks the timestamp column itself; name it explicitly so another
        # datetime column (e.g. signup_date) can never be taken instead.
        frame = frame.rename(columns={timestamp_column: DEFAULT_TIMESTAMP_COLUMN})
    logger = _logger()
    logger.info(
        "Retrieving %d entity row(s) with features from %s", len(frame), ", ".join(view_names)
    )
    # Feast returns rows in its own order, and some offline stores drop entity rows
    # that match no feature row; a row id restores every row, in the caller's order.
    frame = frame.assign(**{ROW_ID: range(len(frame))})
    job = feature_store.get_historical_features(
        entity_df=frame, features=features, full_feature_names=full_feature_names
    )
    result = restore_entity_rows(frame, job.to_df(), ROW_ID)
    if timestamp_column != DEFAULT_TIMESTAMP_COLUMN:
        result = result.rename(columns={DEFAULT_TIMESTAMP_COLUMN: timestamp_column})
        frame = frame.rename(columns={DEFAULT_TIMESTAMP_COLUMN: timestamp_column})
    feature_columns = [c for c in result.columns if c not in frame.columns]
    missing = result[feature_columns].isna().mean() if len(result) else None
    _table_artifact(
        [
            {
                "feature": column,
                "rows": len(result),
                "missing share": round(float(missing[column]), 4) if missing is not None else 0.0,
            }
            for column in feature_columns
        ],
        key=_artifact_key("feast-training-set", feature_store.project),
        description=(
            f"Training set: {len(result)} row(s) from {', '.join(view_names)}, "
            f"entity timestamps {frame[timestamp_column].min()} to "
            f"{frame[timestamp_column].max()}"
        ),
    )
    logger.info("Training set has %d row(s) and %d feature(s).", len(result), len(feature_columns))
    return result


training_set = task(name="feast-training-set", cache_policy=NO_CACHE)(get_training_set)


def _read_entities(
    sql: str, warehouse: Warehouse | str | None, params: Mapping[str, Any] | None
) -> pd.DataFrame:
    from knot_prefect.errors import ConfigurationError

    if warehouse is None:
        raise ConfigurationError(
            "training_set got SQL for entities but no warehouse: pass warehouse= (a "
            "Warehouse block or its document name), or pass a DataFrame."
        )
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    resolved = resolve_block(warehouse, Warehouse)
    return resolved.read(sql, params)


def _is_frame(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "columns")


def get_online_features(
    store: StoreLike,
    entity_rows: pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    features_or_service: FeaturesOrService,
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """Read the latest feature values for entities from the online store.

    Args:
        store: A ``FeastFeatureStore`` block, its document name or a ``feast.FeatureStore``.
        entity_rows: A frame of join keys, a list of ``{join_key: value}`` dicts, or
            a mapping of join key to values.
        features_or_service: ``"view:feature"`` references, or a feature service
            (object or name).
        full_feature_names: Prefix feature columns with their view name.

    Returns:
        One row per entity with the join keys and the features.

    Raises:
        FeatureReferenceError: For unknown features, listing the closest names.

    Examples:
        ```python
        from knot_prefect.tasks import online_features

        online_features("churn-features", [{"customer_id": 7}], "churn_model_v1")
        ```
    """
    from knot_prefect.features.references import reference_error, resolve_features
    from knot_prefect.features.store import resolve_store

    feature_store, _ = resolve_store(store)
    # References are checked only when Feast refuses them: the hot path stays Feast's own.
    features = resolve_features(feature_store, features_or_service, validate=False)
    rows: Any = entity_rows
    if _is_frame(entity_rows):
        # Feast takes columns as lists; this is cheaper than one dict per row.
        frame: Any = entity_rows
        rows = {column: frame[column].tolist() for column in frame.columns}
    try:
        response = feature_store.get_online_features(
            features=features, entity_rows=rows, full_feature_names=full_feature_names
        )
    except Exception:
        if isinstance(features, list) and (error := reference_error(feature_store, features)):
            raise error from None
        raise
    return response.to_df()


online_features = task(name="feast-online-features", cache_policy=NO_CACHE)(get_online_features)


