"""SQLite through SQLAlchemy: the portable path, with DDL inside each write's transaction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from knot_prefect import SqlWarehouse
from knot_prefect.blocks.warehouses.base import WarehouseError


def test_sqlite_file_round_trip_and_check_connection(tmp_path: Path) -> None:
    warehouse = SqlWarehouse(url=f"sqlite:///{tmp_path / 'data.db'}")
    assert warehouse.check_connection().startswith("sqlite 3.")
    warehouse.write(pd.DataFrame({"id": [1, 2], "name": ["a", "b"]}), "people")
    assert (tmp_path / "data.db").exists()
    again = SqlWarehouse(url=f"sqlite:///{tmp_path / 'data.db'}")
    assert again.read_table("people").to_dict("records") == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b"},
    ]


def test_a_failed_upsert_rolls_back_its_update_and_its_staging_table(tmp_path: Path) -> None:
    warehouse = SqlWarehouse(url=f"sqlite:///{tmp_path / 'data.db'}")
    warehouse.write(pd.DataFrame({"id": [1, 2], "score": [0.1, 0.2]}), "scores")
    # The upsert's UPDATE succeeds, then its INSERT of id 9 is aborted by the trigger.
    warehouse.execute(
        "create trigger no_nine before insert on scores when new.id = 9 begin "
        "select raise(abort, 'id 9 is refused'); end"
    )
    change = pd.DataFrame({"id": [1, 9], "score": [0.9, 0.9]})
    with pytest.raises(WarehouseError, match="id 9 is refused"):
        warehouse.write(change, "scores", mode="upsert", keys=["id"])
    assert warehouse.read_table("scores").to_dict("records") == [
        {"id": 1, "score": 0.1},
        {"id": 2, "score": 0.2},
    ]
    tables = warehouse.read("select name from sqlite_master where type = 'table'")
    assert tables["name"].tolist() == ["scores"]  # the staging table was rolled back too
