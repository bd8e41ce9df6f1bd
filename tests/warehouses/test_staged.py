"""Staged writes on SQL warehouses: hidden stage tables, published in one transaction."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from knot_prefect.blocks.warehouses.base import (
    SchemaMismatchError,
    TableExistsError,
    Warehouse,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.staging import STAGE_PREFIX, SqlStagedWarehouse
from tests.warehouses.conftest import BACKENDS, make_warehouse

#: The SQL warehouse paths, whose stages are real tables (Snowflake on fakesnow).
SQL_BACKENDS = [backend for backend in BACKENDS
                if not backend.startswith(("lake-", "delta-", "iceberg-"))]


@pytest.fixture(params=SQL_BACKENDS)
def staged(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStagedWarehouse:
    """Every SQL warehouse path whose stages are real tables (Snowflake on fakesnow)."""
    warehouse = make_warehouse(request.param, tmp_path, request)
    assert isinstance(warehouse, SqlStagedWarehouse)
    return warehouse


def rows(ids: list[int], score: float) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score] * len(ids)})


def table(warehouse: Warehouse, name: str = "scores") -> list[tuple[int, float]]:
    frame = warehouse.read_table(name).sort_values("id")
    return list(zip(frame["id"].astype(int), frame["score"].astype(float), strict=True))


def stage_tables(warehouse: SqlStagedWarehouse) -> list[str]:
    with warehouse._session() as session:
        names = session.table_names(None)
    return [name for name in names if name.startswith(STAGE_PREFIX)]


def test_two_parts_are_invisible_until_one_commit_publishes_exactly_their_rows(
    staged: SqlStagedWarehouse,
) -> None:
    staged.write(rows([1, 2, 3], 0.0), "scores")
    stage_id = staged.new_stage_id()
    # One part from a stream of frames, another from one frame (as two workers would).
    first = staged.stage((rows(ids, 1.0) for ids in ([2], [4])), "scores", stage_id, 0,
                         unique_keys=["id"])
    second = staged.stage(rows([5], 2.0), "scores", stage_id, 1)
    assert (first.rows, second.rows) == (2, 1)
    assert len(stage_tables(staged)) == 2
    assert table(staged) == [(1, 0.0), (2, 0.0), (3, 0.0)]  # a reader sees the old table

    assert staged.commit_staged("scores", [first, second], keys=["id"]) == 3
    assert table(staged) == [(1, 0.0), (2, 1.0), (3, 0.0), (4, 1.0), (5, 2.0)]
    assert stage_tables(staged) == []


def test_a_failure_inside_the_commit_leaves_the_table_and_discard_leaves_no_stage(
    staged: SqlStagedWarehouse, monkeypatch: pytest.MonkeyPatch,
) -> None:
    staged.write(rows([1, 2], 0.0), "scores")
    stage_id = staged.new_stage_id()
    parts = [staged.stage(rows([2, 3], 1.0), "scores", stage_id, 0),
             staged.stage(rows([4], 1.0), "scores", stage_id, 1)]
    with staged._session() as session:
        session_type = type(session)

    def fail(self: object, *args: object) -> None:
        raise WarehouseError("injected failure inside the commit")

    # Transactional backends: dropping the stages, the last step after the target
    # changed. Where DDL commits at once: the one publishing statement.
    step = "drop" if session_type.transactional_ddl else "upsert"
    monkeypatch.setattr(session_type, step, fail)
    with pytest.raises(WarehouseError, match="injected failure"):
        staged.commit_staged("scores", parts, keys=["id"])
    monkeypatch.undo()

    assert table(staged) == [(1, 0.0), (2, 0.0)]
    staged.discard_staged(parts)
    assert stage_tables(staged) == []
    assert table(staged) == [(1, 0.0), (2, 0.0)]


def test_each_mode_publishes_all_parts_and_repeated_or_null_keys_are_refused(
    staged: SqlStagedWarehouse,
) -> None:
    stage_id = staged.new_stage_id()

    def parts(*groups: list[int]) -> list:  # type: ignore[type-arg]
        return [staged.stage(rows(ids, float(n)), "scores", stage_id, n)
                for n, ids in enumerate(groups)]

    assert staged.commit_staged("scores", parts([1], [2]), mode="append") == 2
    assert staged.commit_staged("scores", parts([3]), mode="append") == 1
    assert table(staged) == [(1, 0.0), (2, 1.0), (3, 0.0)]
    with pytest.raises(TableExistsError, match="mode='fail'"):
        staged.commit_staged("scores", parts([9]), mode="fail")
    assert staged.commit_staged("scores", parts([7], [8]), mode="replace") == 2
    assert table(staged) == [(7, 0.0), (8, 1.0)]

    with pytest.raises(SchemaMismatchError, match="repeat in the rows staged"):
        staged.commit_staged("scores", parts([8], [8, 9]), keys=["id"])
    null_key = pd.DataFrame({"id": [None, 5.0], "score": [1.0, 1.0]})
    with pytest.raises(SchemaMismatchError, match="null in 1 staged row"):
        staged.commit_staged("scores", [staged.stage(null_key, "scores", stage_id, 0)],
                             keys=["id"])
    assert table(staged) == [(7, 0.0), (8, 1.0)]
    # A part whose own keys repeat is refused when staged, and removed.
    with pytest.raises(SchemaMismatchError, match="repeat"):
        staged.stage(rows([1, 1], 0.0), "scores", stage_id, 5, unique_keys=["id"])
    staged.discard_staged([staged.stage(rows([1], 0.0), "scores", stage_id, n)
                           for n in range(2)])
    assert stage_tables(staged) == []


def test_a_restaged_part_replaces_the_old_one_and_stale_stages_are_dropped(
    staged: SqlStagedWarehouse,
) -> None:
    stale_id = f"{int((time.time() - 2 * 86400) * 1000):013d}-{'0' * 32}-stage"
    staged.stage(rows([1], 9.0), "scores", stale_id, 0)  # left by a killed run
    stage_id = staged.new_stage_id()
    staged.stage(rows([1, 2], 9.0), "scores", stage_id, 0)
    retried = staged.stage(rows([1, 2], 1.0), "scores", stage_id, 0)  # a retried task
    assert len(stage_tables(staged)) == 2
    assert staged.commit_staged("scores", [retried], keys=["id"]) == 2
    assert table(staged) == [(1, 1.0), (2, 1.0)]
    assert stage_tables(staged) == []  # the commit dropped the stale stage too

    staged.stage(rows([3], 0.0), "scores", stale_id, 1)
    assert staged.drop_stale_stages("scores", older_than=3600) == 1
    assert stage_tables(staged) == []


def test_a_bad_stage_id_is_refused() -> None:
    from knot_prefect import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=":memory:")
    with pytest.raises(WarehouseError, match="new_stage_id"):
        warehouse.stage(rows([1], 0.0), "scores", "my-stage")


@pytest.mark.parametrize("backend", ["postgres-adbc", "postgres-sqlalchemy"])
def test_a_used_database_warehouse_pickles_for_a_worker_that_stages(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    import pickle

    warehouse = make_warehouse(backend, tmp_path, request)
    warehouse.write(rows([1], 0.0), "scores")  # opens (and pools) connections
    worker_copy = pickle.loads(pickle.dumps(warehouse))
    part = worker_copy.stage(rows([2], 1.0), "scores", warehouse.new_stage_id())
    assert warehouse.commit_staged("scores", [part], keys=["id"]) == 1
    assert table(warehouse) == [(1, 0.0), (2, 1.0)]
