"""A DuckDB file another process holds: fail at once, or wait for that process's turn."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from knot_prefect.blocks.warehouses import duckdb as duckdb_module
from knot_prefect.blocks.warehouses.base import (
    ConcurrentWriteError,
    TableNotFoundError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.duckdb import TURN_SUFFIX, DuckDBWarehouse
from knot_prefect.blocks.warehouses.turns import waiting_for_turn

# Another process takes knot's turn on the file, says so, and keeps it until told to go
# (its standard input closes).
HOLDER = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""

# Whether another process could take the turn now, without waiting.
FREE = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
"""


def _held_by_another_process(database: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, f"{database}{TURN_SUFFIX}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()


def _free_for_another_process(database: Path) -> bool:
    return subprocess.run([sys.executable, "-c", FREE, f"{database}{TURN_SUFFIX}"],
                          capture_output=True, check=False).returncode == 0


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "features.duckdb"
    DuckDBWarehouse(path=str(path)).write(pd.DataFrame({"id": [1, 2]}), "features")
    return path


def test_a_file_held_by_another_process_fails_at_once_by_default(database: Path) -> None:
    holder = _held_by_another_process(database)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match="open in another process"):
            DuckDBWarehouse(path=str(database)).read("select * from features")
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()


def test_a_read_waits_for_the_other_processs_turn(database: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(database)).waiting_for_turns(60)
    holder = _held_by_another_process(database)
    release = threading.Timer(0.5, _release, (holder,))
    try:
        started = time.monotonic()
        release.start()
        assert warehouse.read("select * from features")["id"].tolist() == [1, 2]
        assert time.monotonic() - started >= 0.5  # it did wait for the holder's turn
        assert holder.wait(timeout=30) == 0
    finally:
        release.cancel()
        holder.kill()
        holder.wait()


def test_a_turn_longer_than_the_wait_fails_with_nothing_written(database: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(database), turn_wait_seconds=0.3)
    holder = _held_by_another_process(database)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match="retrying is safe"):
            warehouse.write(pd.DataFrame({"id": [3]}), "features", mode="append")
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()
    assert DuckDBWarehouse(path=str(database)).read("select * from features")["id"].tolist() == [
        1, 2]


def test_the_turn_is_given_back_when_a_statement_or_the_open_fails(
    database: Path, tmp_path: Path
) -> None:
    with pytest.raises(TableNotFoundError):
        DuckDBWarehouse(path=str(database)).read("select * from missing")
    assert duckdb_module._turns == {}
    assert _free_for_another_process(database)
    not_duckdb = tmp_path / "notes.duckdb"
    not_duckdb.write_text("not a database")
    with pytest.raises(WarehouseError):
        DuckDBWarehouse(path=str(not_duckdb)).read("select 1")
    assert duckdb_module._turns == {}
    assert _free_for_another_process(not_duckdb)


def test_waiting_keeps_the_longer_of_two_waits_and_leaves_the_block_as_it_was() -> None:
    warehouse = DuckDBWarehouse(path="w.duckdb", turn_wait_seconds=30)
    assert warehouse.waiting_for_turns(10) is warehouse
    shorter = DuckDBWarehouse(path="w.duckdb", turn_wait_seconds=1)
    assert shorter.waiting_for_turns(10).turn_wait_seconds == 10
    assert shorter.turn_wait_seconds == 1


def test_an_in_memory_database_is_the_same_database_after_asking_for_a_wait() -> None:
    warehouse = DuckDBWarehouse(path=":memory:")
    waiting = warehouse.waiting_for_turns(10)
    warehouse.write(pd.DataFrame({"id": [7]}), "scores")
    assert waiting.read("select id from scores")["id"].tolist() == [7]


def test_any_other_error_is_raised_at_once() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("no such column: x")

    with pytest.raises(ValueError, match="no such column"):
        waiting_for_turn(call, wait=5.0)
    assert calls == [1]
