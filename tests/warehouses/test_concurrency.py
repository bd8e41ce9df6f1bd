"""Concurrent PostgreSQL upserts beyond the contract's: a user's table, the portable path.

The contract (``test_contract.py``) runs eight writer processes on every backend that
allows several; here eight processes upsert overlapping key ranges into a table the
user created without any unique key (knot then locks the table for the merge), and
through SQLAlchemy instead of ADBC.
"""

from __future__ import annotations

import pytest

from knot_prefect import SqlWarehouse
from tests.warehouses._contender import block_spec, run_writers
from tests.warehouses._writer import frame

WRITERS = 8
ROWS = 20_000
STEP = 10_000  # each writer's range overlaps the next one's by half
pytestmark = pytest.mark.heavy


@pytest.mark.parametrize(("fast_path", "created_by"), [(True, "user"), (False, "knot")])
def test_concurrent_upserts_never_duplicate_nor_lose_a_key(
    postgres_database: dict[str, str], fast_path: bool, created_by: str
) -> None:
    warehouse = SqlWarehouse(url=postgres_database["url"], fast_path=fast_path)
    if created_by == "user":
        warehouse.execute("create table victim (id bigint, score double precision, label text)")
        warehouse.write(frame(STEP), "victim")
    else:
        warehouse.write(frame(STEP), "victim", mode="upsert", keys=["id"])

    writers = [("upsert", i * STEP) for i in range(WRITERS)]
    assert run_writers(block_spec(warehouse), writers, ROWS) == ["done"] * WRITERS

    expected = (WRITERS - 1) * STEP + ROWS
    counts = warehouse.read("select count(*) as n, count(distinct id) as k from victim")
    assert counts.to_dict("records") == [{"n": expected, "k": expected}]
    # every row holds the values one of the writers sent for its key
    labels = warehouse.read("select count(*) as bad from victim where label <> 'row-' || id")
    assert labels["bad"].tolist() == [0]
