"""Fixtures of the serving tests: one real world for the package, servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving.world import MODEL, World, build_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A materialized Feast repo and two registered versions of the churn model."""
    return build_world(tmp_path_factory.mktemp("serving-world"))


@pytest.fixture
def registry(world: World) -> Iterator[Any]:
    """An MLflow client on the world's store; the aliases are put back afterwards."""
    from knot_prefect.blocks.mlflow_tracking import MLflowTracking

    client = MLflowTracking(tracking_uri=world.tracking_uri).get_client()
    yield client
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "challenger", "2")
