"""Concurrent upserters with overlapping keys never duplicate a key nor lose a row.

Eight real processes upsert overlapping key ranges into one PostgreSQL table at the
same moment, into a table knot created (a unique index on the keys) and into a table
the user created without any unique key (knot then locks the table for the merge).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from knot_prefect import SqlWarehouse
from tests.warehouses._writer import frame

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
ROWS = 20_000
STEP = 10_000  # each writer's range overlaps the next one's by half
pytestmark = pytest.mark.heavy


def run_upserters(url: str, fast_path: bool) -> list[str]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.warehouses._upserter", url,
             "fast" if fast_path else "portable", str(i * STEP), str(ROWS)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:  # start them all at once
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        outcomes.append("done" if process.returncode == 0 and "done" in out else err[-2000:])
    return outcomes


@pytest.mark.parametrize(
    ("fast_path", "created_by"),
    [(True, "knot"), (True, "user"), (False, "knot")],
)
def test_concurrent_upserts_never_duplicate_nor_lose_a_key(
    postgres_database: dict[str, str], fast_path: bool, created_by: str
) -> None:
    warehouse = SqlWarehouse(url=postgres_database["url"], fast_path=fast_path)
    if created_by == "user":
        warehouse.execute("create table victim (id bigint, score double precision, label text)")
        warehouse.write(frame(STEP), "victim")
    else:
        warehouse.write(frame(STEP), "victim", mode="upsert", keys=["id"])

    assert run_upserters(postgres_database["url"], fast_path) == ["done"] * WRITERS

    expected = (WRITERS - 1) * STEP + ROWS
    counts = warehouse.read("select count(*) as n, count(distinct id) as k from victim")
    assert counts.to_dict("records") == [{"n": expected, "k": expected}]
    # every row holds the values one of the writers sent for its key
    labels = warehouse.read("select count(*) as bad from victim where label <> 'row-' || id")
    assert labels["bad"].tolist() == [0]
