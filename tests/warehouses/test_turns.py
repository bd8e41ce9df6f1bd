"""A DuckDB file another process holds: fail at once, or wait for that process's turn."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from knot_prefect.blocks.warehouses.base import ConcurrentWriteError
from knot_prefect.blocks.warehouses.duckdb import TURN_SUFFIX, DuckDBWarehouse
from knot_prefect.blocks.warehouses.turns import waiting_for_turn

# Another process takes knot's turn on the file, says so, and keeps it for a while.
HOLDER = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _held_by_another_process(database: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, f"{database}{TURN_SUFFIX}", str(seconds)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "features.duckdb"
    DuckDBWarehouse(path=str(path)).write(pd.DataFrame({"id": [1, 2]}), "features")
    return path


def test_a_file_held_by_another_process_fails_at_once_by_default(database: Path) -> None:
    holder = _held_by_another_process(database, 30)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match="open in another process"):
            DuckDBWarehouse(path=str(database)).read("select * from features")
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()


def test_a_read_waits_for_the_other_processs_turn(database: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(database)).waiting_for_turns(20)
    holder = _held_by_another_process(database, 1)
    try:
        started = time.monotonic()
        assert warehouse.read("select * from features")["id"].tolist() == [1, 2]
        assert time.monotonic() - started >= 0.5  # it did wait for the holder's turn
        assert holder.wait(timeout=10) == 0
    finally:
        holder.kill()


def test_a_turn_longer_than_the_wait_fails_with_nothing_written(database: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(database), turn_wait_seconds=0.3)
    holder = _held_by_another_process(database, 30)
    try:
        started = time.monotonic()
        with pytest.raises(ConcurrentWriteError, match="retrying is safe"):
            warehouse.write(pd.DataFrame({"id": [3]}), "features", mode="append")
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    assert DuckDBWarehouse(path=str(database)).read("select * from features")["id"].tolist() == [
        1, 2]


def test_waiting_keeps_the_longer_of_two_waits() -> None:
    warehouse = DuckDBWarehouse(path="w.duckdb", turn_wait_seconds=30)
    assert warehouse.waiting_for_turns(10).turn_wait_seconds == 30
    assert warehouse.turn_wait_seconds == 30  # the block itself is left as it was
    assert DuckDBWarehouse(path="w.duckdb").waiting_for_turns(10).turn_wait_seconds == 10


def test_any_other_error_is_raised_at_once() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("no such column: x")

    with pytest.raises(ValueError, match="no such column"):
        waiting_for_turn(call, wait=5.0)
    assert calls == [1]
