"""The feature lifecycle on both configurations: apply, materialize, gate, retrieve."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from knot_prefect.features.errors import StaleFeaturesError
from knot_prefect.tasks.features import (
    ensure_fresh,
    feast_apply,
    materialize,
    online_features,
    training_set,
)
from tests.features.conftest import NOW, T0, FeatureRepo


def _online(repo: FeatureRepo, ids: list[int]) -> dict[int, float | None]:
    frame = online_features.fn(
        repo.block, [{"customer_id": i} for i in ids], ["customer_activity:spend"]
    )
    return {
        int(row.customer_id): None if pd.isna(row.spend) else float(row.spend)
        for row in frame.itertuples()
    }


def test_apply_reports_the_plan_then_is_a_noop(feature_repo: FeatureRepo) -> None:
    first = feast_apply.fn(feature_repo.block)
    created = {(c["object type"], c["name"]) for c in first["changes"] if c["change"] == "CREATE"}
    assert first["applied"] is True
    assert {("FeatureView", "customer_activity"), ("FeatureService", "churn_model")} <= created

    second = feast_apply.fn(feature_repo.block)
    assert second == {"project": first["project"], "applied": False, "changes": []}

    definitions = feature_repo.path / "definitions.py"
    definitions.write_text(
        definitions.read_text().replace(
            'days=30),\n    schema=[Field(name="seats"', 'days=7),\n    schema=[Field(name="seats"'
        )
    )
    third = feast_apply.fn(feature_repo.block)
    assert [(c["name"], c["change"]) for c in third["changes"] if c["kind"] == "registry"] == [
        ("customer_plan", "UPDATE")
    ]
    assert feature_repo.block.get_store().get_feature_view("customer_plan").ttl == timedelta(days=7)


def test_training_set_is_point_in_time_correct(feature_repo: FeatureRepo) -> None:
    feast_apply.fn(feature_repo.block)
    entities = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3],
            "event_timestamp": [
                T0 + timedelta(days=1),  # before customer 1's second value (T0+2d)
                T0 + timedelta(days=3),  # after it
                T0 + timedelta(days=1),
                T0 + timedelta(hours=12),  # before customer 3's first value (T0+1d)
                T0 + timedelta(days=1, hours=1),
            ],
            "label": [0, 1, 0, 0, 1],
        }
    )
    frame = training_set.fn(
        feature_repo.block, entities, ["customer_activity:spend", "customer_activity:orders"]
    )
    got = {
        (int(row.customer_id), row.event_timestamp): (row.spend, row.orders, row.label)
        for row in frame.itertuples()
    }
    assert len(frame) == len(entities)
    assert got[(1, T0 + timedelta(days=1))][:2] == (10.0, 1)  # the later 20.0 never leaks
    assert got[(1, T0 + timedelta(days=3))][:2] == (20.0, 2)
    assert got[(2, T0 + timedelta(days=1))][:2] == (5.0, 1)
    assert pd.isna(got[(3, T0 + timedelta(hours=12))][0])  # recorded only later
    assert got[(3, T0 + timedelta(days=1, hours=1))][:2] == (7.0, 3)
    assert got[(1, T0 + timedelta(days=3))][2] == 1  # entity columns ride along

    by_service = training_set.fn(feature_repo.block, entities, "churn_model")
    assert set(by_service.columns) >= {"spend", "orders", "seats"}
    assert sorted(by_service["spend"].dropna()) == sorted(frame["spend"].dropna())


def test_incremental_materialization_is_idempotent(feature_repo: FeatureRepo) -> None:
    feast_apply.fn(feature_repo.block)
    window_end = T0 + timedelta(hours=23)

    first = materialize.fn(feature_repo.block, views=["customer_activity"], end=window_end)
    assert [(r["view"], r["rows"]) for r in first] == [("customer_activity", 2)]
    after_first = _online(feature_repo, [1, 2, 3])
    assert after_first == {1: 10.0, 2: 5.0, 3: None}  # customer 3 arrives at T0+1d

    again = materialize.fn(feature_repo.block, views=["customer_activity"], end=window_end)
    assert [(r["rows"], r["skipped"]) for r in again] == [(0, "up to date")]
    assert _online(feature_repo, [1, 2, 3]) == after_first

    # The next window continues where the first ended: only the newer values arrive.
    later = materialize.fn(feature_repo.block, views=["customer_activity"], end=NOW)
    assert later[0]["start"] == window_end.isoformat()
    assert later[0]["rows"] == 2  # customer 1's second value and customer 3
    assert _online(feature_repo, [1, 2, 3]) == {1: 20.0, 2: 5.0, 3: 7.0}

    # A full rewrite of a window already loaded leaves the online store as it was.
    for _ in range(2):
        materialize.fn(
            feature_repo.block,
            views=["customer_activity"],
            end=NOW,
            incremental=False,
            start=T0 - timedelta(days=1),
        )
        assert _online(feature_repo, [1, 2, 3]) == {1: 20.0, 2: 5.0, 3: 7.0}


def test_freshness_gate_trips_then_passes(feature_repo: FeatureRepo) -> None:
    feast_apply.fn(feature_repo.block)
    materialize.fn(feature_repo.block, views="customer_activity", end=T0 + timedelta(days=1))

    with pytest.raises(StaleFeaturesError) as stale:
        ensure_fresh.fn(feature_repo.block, max_age=timedelta(days=1))
    message = str(stale.value)
    assert "customer_activity (9d" in message
    assert "customer_plan (never materialized)" in message
    assert set(stale.value.stale) == {"customer_activity", "customer_plan"}

    ages = ensure_fresh.fn(
        feature_repo.block, views=["customer_activity"], max_age=timedelta(days=10)
    )
    assert 9 * 86400 <= ages["customer_activity"] <= 10 * 86400

    materialize.fn(feature_repo.block, end=NOW)
    ages = ensure_fresh.fn(feature_repo.block, max_age=timedelta(days=1))
    assert set(ages) == {"customer_activity", "customer_plan"}


def test_materialization_flow_runs_on_both_configurations(feature_repo: FeatureRepo) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from knot_prefect.flows import feature_materialization_flow

    state = feature_materialization_flow(feature_repo.block, max_age=3600, return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["apply"]["applied"] is True
    assert {r["view"]: r["rows"] for r in result["materialized"]} == {
        "customer_activity": 3,  # the latest value of each of the 3 customers
        "customer_plan": 3,
    }
    assert set(result["ages"]) == {"customer_activity", "customer_plan"}
    assert _online(feature_repo, [1, 2, 3]) == {1: 20.0, 2: 5.0, 3: 7.0}

    project = feature_repo.block.get_store().project
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(
                    any_=[f"feast-materialize-{project}", f"feast-plan-{project}"]
                )
            )
        )
    assert {artifact.key for artifact in artifacts} == {
        f"feast-materialize-{project}",
        f"feast-plan-{project}",
    }

    # A second run applies nothing and finds nothing left to load.
    again = feature_materialization_flow(feature_repo.block, max_age=3600)
    assert again["apply"]["applied"] is False
    assert sum(r["rows"] for r in again["materialized"]) == 0


def test_online_features_accepts_frames_and_services(feature_repo: FeatureRepo) -> None:
    feast_apply.fn(feature_repo.block)
    materialize.fn(feature_repo.block, end=NOW)
    frame = online_features.fn(
        feature_repo.block, pd.DataFrame({"customer_id": [3, 1]}), "churn_model"
    )
    assert frame[["customer_id", "spend", "orders", "seats"]].to_dict("records") == [
        {"customer_id": 3, "spend": 7.0, "orders": 3, "seats": 2},
        {"customer_id": 1, "spend": 20.0, "orders": 2, "seats": 5},
    ]


def test_training_set_from_sql_on_a_warehouse(local_repo: FeatureRepo, tmp_path: Path) -> None:
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    feast_apply.fn(local_repo.block)
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    labels = pd.DataFrame(
        {
            "customer_id": [1, 1, 3],
            "snapshot_at": [T0 + timedelta(days=1), T0 + timedelta(days=3), NOW],
            "churned": [False, True, False],
        }
    )
    warehouse.write(labels, "labels", mode="replace")
    name = f"features-warehouse-{uuid.uuid4().hex[:8]}"
    warehouse.save(name)

    frame = training_set.fn(
        local_repo.block,
        "SELECT customer_id, snapshot_at, churned FROM labels WHERE customer_id = :id "
        "ORDER BY snapshot_at",
        ["customer_activity:spend"],
        warehouse=name,
        params={"id": 1},
        timestamp_column="snapshot_at",
    )
    assert frame[["customer_id", "churned", "spend"]].to_dict("list") == {
        "customer_id": [1, 1],
        "churned": [False, True],
        "spend": [10.0, 20.0],
    }
