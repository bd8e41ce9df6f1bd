"""The extract and publish tasks inside real Prefect flow runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from prefect import flow

from knot_prefect import DuckDBWarehouse, SqlWarehouse
from knot_prefect.blocks.resolve import BlockNotFoundError
from knot_prefect.tasks import extract, publish


def artifact_rows(key: str) -> list[dict[str, Any]]:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None, f"no artifact {key}"
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


def test_publish_and_extract_by_block_document_name(tmp_path: Path) -> None:
    DuckDBWarehouse(path=str(tmp_path / "w.duckdb")).save("tasks-duck", overwrite=True)

    @flow
    def round_trip() -> tuple[pd.DataFrame, pd.DataFrame]:
        frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.2, 0.5, 0.9]})
        publish(frame, "tasks-duck", "analytics.Scores_2024", mode="upsert", keys=["id"])
        whole = extract("tasks-duck", "analytics.Scores_2024")
        high = extract(
            "tasks-duck", "select id from analytics.Scores_2024 where score > :s", {"s": 0.4}
        )
        return whole, high

    whole, high = round_trip()
    assert sorted(whole["id"]) == [1, 2, 3]
    assert sorted(high["id"]) == [2, 3]
    (row,) = artifact_rows("publish-analytics-scores-2024")
    assert row["rows"] == 3 and row["mode"] == "upsert" and row["keys"] == "id"
    assert row["warehouse"] == "DuckDB Warehouse 'tasks-duck'"
    assert row["columns"] == "id, score"


def test_unknown_block_names_list_the_existing_documents(tmp_path: Path) -> None:
    DuckDBWarehouse(path=str(tmp_path / "w.duckdb")).save("tasks-known", overwrite=True)
    SqlWarehouse(url=f"sqlite:///{tmp_path / 'w.db'}").save("tasks-lite", overwrite=True)
    with pytest.raises(BlockNotFoundError) as caught:
        extract.fn("tasks-unknwon", "scores")
    message = str(caught.value)
    assert "'tasks-unknwon'" in message
    assert "duckdb-warehouse/tasks-known" in message and "sql-warehouse/tasks-lite" in message
    # the slug form picks a type explicitly
    warehouse = SqlWarehouse(url=f"sqlite:///{tmp_path / 'w.db'}")
    publish.fn(pd.DataFrame({"id": [1]}), warehouse, "t")
    assert extract.fn("sql-warehouse/tasks-lite", "t")["id"].tolist() == [1]


class LostAcknowledgement(DuckDBWarehouse):
    """Commits the first write, then fails as if the connection dropped before the reply."""

    _block_type_name = "Lost Acknowledgement Warehouse"
    failures: ClassVar[list[str]] = []

    def _write_arrow(self, data: Any, table: str, mode: str, keys: list[str], evolve: bool) -> int:
        rows = super()._write_arrow(data, table, mode, keys, evolve)
        if not self.failures:
            self.failures.append(table)
            raise ConnectionError("connection lost after commit")
        return rows


def test_a_retried_publish_never_duplicates_rows(tmp_path: Path) -> None:
    warehouse = LostAcknowledgement(path=str(tmp_path / "w.duckdb"))
    retrying = publish.with_options(retries=2, retry_delay_seconds=0)

    @flow
    def score_and_publish() -> int:
        frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.1, 0.2, 0.3]})
        return retrying(frame, warehouse, "scores", mode="upsert", keys=["id"]).rows

    assert score_and_publish() == 3
    assert LostAcknowledgement.failures == ["scores"]  # the first attempt did fail
    assert sorted(warehouse.read_table("scores")["id"]) == [1, 2, 3]


def test_publishing_an_empty_frame_writes_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))

    @flow
    def publish_nothing() -> int:
        return publish(pd.DataFrame({"id": []}), warehouse, "empty_table").rows

    assert publish_nothing() == 0
    assert not warehouse.table_exists("empty_table")
    assert "Published nothing to empty_table" in caplog.text
    assert artifact_rows("publish-empty-table")[0]["rows"] == 0


def test_extract_refuses_params_with_a_table_name() -> None:
    warehouse = DuckDBWarehouse(path=":memory:")
    with pytest.raises(ValueError, match="is a table name, not a query"):
        extract.fn(warehouse, "scores", {"id": 1})


def test_io_tasks_retry_connection_errors_by_default_but_never_logical_ones(
    tmp_path: Path,
) -> None:
    from knot_prefect.blocks.warehouses.base import SchemaMismatchError, WarehouseConnectionError
    from knot_prefect.tasks.warehouse import IO_RETRIES

    assert IO_RETRIES >= 1
    assert publish.retries == IO_RETRIES and extract.retries == IO_RETRIES
    # a port where nothing listens: every attempt fails to connect
    from tests.services import free_port

    unreachable = SqlWarehouse(url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    attempts: list[str] = []

    class Counting(DuckDBWarehouse):
        _block_type_name = "Counting Warehouse"

        def _write_arrow(self, *args: Any, **kwargs: Any) -> int:
            attempts.append("logical")
            return super()._write_arrow(*args, **kwargs)

    quick_extract = extract.with_options(retry_delay_seconds=0)
    quick_publish = publish.with_options(retry_delay_seconds=0)

    @flow
    def read_unreachable() -> None:
        quick_extract(unreachable, "select 1")

    with pytest.raises(WarehouseConnectionError):
        read_unreachable()
    counting = Counting(path=str(tmp_path / "w.duckdb"))
    counting.write(pd.DataFrame({"id": [1]}), "t")
    attempts.clear()

    @flow
    def publish_mismatch() -> None:
        quick_publish(pd.DataFrame({"id": ["text"]}), counting, "t")

    with pytest.raises(SchemaMismatchError):
        publish_mismatch()
    assert attempts == ["logical"]  # one attempt only

