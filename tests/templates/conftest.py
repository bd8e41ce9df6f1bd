"""A team's own world: its own block documents, none of the demo's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The demo's documents: none may be needed by a team's run.
DEMO_DOCUMENTS = ("local-warehouse", "local-features", "local-mlflow", "churn-labels",
                  "churn-scoring")
DEMO_NAMES = ("churn", "customer")


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """KNOT_HOME without the demo's documents, and the team's own warehouse and MLflow.

    Demo documents other modules saved are taken away for the module and put back after.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentCreate

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse

    home: Path = tmp_path_factory.mktemp("team-home")
    removed: list[tuple[str, Any]] = []
    with get_client(sync_client=True) as client:
        for document in client.read_block_documents():
            if document.name in DEMO_DOCUMENTS:
                removed.append((document.name, document))
                client.delete_block_document(document.id)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("KNOT_HOME", str(home))
            warehouse = DuckDBWarehouse(path=str(home / "team.duckdb"))
            warehouse.save("team-warehouse", overwrite=True)
            tracking = MLflowTracking(tracking_uri=f"sqlite:///{home}/mlflow.db",
                                      experiment_name="team-models")
            tracking.save("team-mlflow", overwrite=True)
            yield {"home": home, "warehouse": warehouse, "tracking": tracking}
    finally:
        with get_client(sync_client=True) as client:
            for _, document in removed:
                client.create_block_document(BlockDocumentCreate(**document.model_dump(
                    include={"name", "data", "block_schema_id", "block_type_id",
                             "is_anonymous"})))
