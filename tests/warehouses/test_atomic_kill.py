"""A writer process killed mid-write leaves the table exactly as it was.

The writer is a real process (``_writer.py``) killed with SIGKILL while PostgreSQL
is inside its COPY or MERGE, or while DuckDB is inside its transaction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from knot_prefect import DuckDBWarehouse, SqlWarehouse
from tests.warehouses._writer import frame

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.heavy

FINGERPRINT = (
    "select count(*), sum(id), round(sum(score)::numeric, 6), "
    "md5(string_agg(label, ',' order by id)) from victim"
)


def start_writer(spec: dict[str, Any], mode: str, rows: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.warehouses._writer", json.dumps(spec), mode, str(rows)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    return process


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the writer"
        time.sleep(0.01)


def kill(process: subprocess.Popen[str]) -> None:
    assert process.poll() is None, "the writer finished before it could be killed"
    process.kill()
    process.wait(timeout=30)
    assert process.stdout is not None
    assert "done" not in process.stdout.read()


@pytest.mark.parametrize(
    ("mode", "statement"),
    [("append", "copy"), ("replace", "copy"), ("upsert", "merge")],
)
def test_postgres_writer_killed_mid_write(
    postgres_database: dict[str, str], mode: str, statement: str
) -> None:
    import psycopg

    warehouse = SqlWarehouse(url=postgres_database["url"])
    warehouse.write(frame(50_000, first_id=5_000_000), "victim")
    with psycopg.connect(postgres_database["dsn"], autocommit=True) as watcher:
        before = watcher.execute(FINGERPRINT).fetchone()

        writer_pids: list[int] = []

        def writer_in(statement: str) -> bool:
            rows = watcher.execute(
                "select pid from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid() and state = 'active' and query ilike %s",
                (f"{statement}%",),
            ).fetchall()
            writer_pids.extend(row[0] for row in rows)
            return bool(rows)

        def writer_gone() -> bool:
            row = watcher.execute(
                "select count(*) from pg_stat_activity where pid = any(%s)", (writer_pids,)
            ).fetchone()
            return bool(row and row[0] == 0)

        process = start_writer({"kind": "sql", "url": postgres_database["url"]}, mode, 600_000)
        wait_for(lambda: writer_in(statement))
        kill(process)
        wait_for(writer_gone)  # its backend has ended: the transaction is rolled back
        assert watcher.execute(FINGERPRINT).fetchone() == before
        leftovers = watcher.execute(
            "select table_name from information_schema.tables where table_name like '\\_knot%%'"
        ).fetchall()
        assert leftovers == []
    # the table is usable afterwards: the same write now succeeds
    assert warehouse.write(frame(10), "victim", mode="append").rows == 10


@pytest.mark.parametrize("mode", ["replace", "append"])
def test_duckdb_writer_killed_mid_write(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path=str(path))
    warehouse.write(frame(100_000, first_id=10_000_000), "victim")
    query = FINGERPRINT.replace("::numeric", "")
    before = warehouse.read(query).to_numpy().tolist()
    process = start_writer({"kind": "duckdb", "path": str(path)}, mode, 5_000_000)
    time.sleep(0.3)  # the write of 5M rows takes over a second
    kill(process)
    assert warehouse.read(query).to_numpy().tolist() == before
    assert warehouse.write(frame(10), "victim", mode="append").rows == 10
