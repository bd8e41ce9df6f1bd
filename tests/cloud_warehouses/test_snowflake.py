"""SnowflakeWarehouse against fakesnow (Snowflake emulated in-process on DuckDB)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses.base import (
    SchemaMismatchError,
    TableExistsError,
    TableNotFoundError,
    WarehouseConnectionError,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError
from knot_prefect.blocks.warehouses.snowflake import SnowflakeWarehouse

PASSWORD = "sf-test-password-value"


@pytest.fixture
def warehouse() -> Iterator[SnowflakeWarehouse]:
    import fakesnow
    from prefect_snowflake import SnowflakeCredentials

    credentials = SnowflakeCredentials(account="knot-test", user="knot", password=PASSWORD)
    with fakesnow.patch():
        yield SnowflakeWarehouse(
            credentials=credentials, database="KNOT", warehouse="COMPUTE_WH",
            schema_name="ML",
        )


def scores(ids: list[int], score: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score + i / 100 for i in ids]})


def test_types_round_trip(warehouse: SnowflakeWarehouse) -> None:
    utc = dt.UTC
    frame = pa.table(
        {
            "i": pa.array([1, None, -(2**62)], pa.int64()),
            "f": pa.array([1.5, None, -0.25]),
            "flag": pa.array([True, False, None]),
            "text": pa.array(["a", None, "ünïcødé ✓"]),
            "at": pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=utc), None,
                            dt.datetime(1999, 12, 31, tzinfo=utc)], pa.timestamp("us", "UTC")),
            "naive": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2000, 2, 29)],
                              pa.timestamp("us")),
            "day": pa.array([dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)]),
            "amount": pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-9.99")],
                               pa.decimal128(10, 2)),
        }
    )
    assert warehouse.write(frame, "typed", mode="replace").rows == 3
    back = warehouse.read_table_arrow("typed")
    assert back.schema.names == frame.schema.names
    for name in frame.schema.names:
        assert back.column(name).type == frame.column(name).type, name
        assert back.column(name).to_pylist() == frame.column(name).to_pylist(), name


def test_append_replace_upsert_and_bound_parameters(warehouse: SnowflakeWarehouse) -> None:
    warehouse.write(scores([1, 2, 3]), "scores")
    warehouse.write(scores([4]), "scores", mode="append")
    hostile = "1' OR '1'='1"
    assert warehouse.read(
        'SELECT "id" FROM "ML"."scores" WHERE TO_VARCHAR("id") = :id', {"id": hostile}
    ).empty
    for _ in range(2):  # a retried upsert changes nothing the second time
        warehouse.write(scores([3, 4, 5], score=1.0), "scores", mode="upsert", keys=["id"])
    table = warehouse.read('SELECT "id", "score" FROM "ML"."scores" ORDER BY "id"')
    assert table["id"].tolist() == [1, 2, 3, 4, 5]
    assert table["score"].round(4).tolist() == [0.01, 0.02, 1.03, 1.04, 1.05]

    warehouse.write(pd.DataFrame({"other": ["x"]}), "scores", mode="replace")
    assert warehouse.read_table("scores").to_dict("list") == {"other": ["x"]}
    batches = list(warehouse.read_batches('SELECT * FROM "ML"."scores"', batch_rows=1))
    assert [b.num_rows for b in batches] == [1]


def test_failed_write_leaves_the_table_unchanged(
    warehouse: SnowflakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from snowflake.connector import pandas_tools

    warehouse.write(scores([1, 2]), "scores")

    def load_fails(*args: object, **kwargs: object) -> None:
        raise OSError("connection reset while loading")

    monkeypatch.setattr(pandas_tools, "write_pandas", load_fails)
    for mode in ("replace", "append", "upsert"):
        with pytest.raises(OSError, match="connection reset"):
            warehouse.write(scores([7, 8, 9]), "scores", mode=mode, keys=["id"])
        assert sorted(warehouse.read_table("scores")["id"]) == [1, 2]
    monkeypatch.undo()
    # No staging tables are left behind.
    names = warehouse.read(
        'SELECT table_name AS "name" FROM KNOT.information_schema.tables '
        "WHERE table_schema = :s",
        {"s": "ML"},
    )["name"].tolist()
    assert names == ["scores"]


def test_schema_rules_and_modes(warehouse: SnowflakeWarehouse) -> None:
    warehouse.write(scores([1]), "scores", mode="fail")
    with pytest.raises(TableExistsError):
        warehouse.write(scores([2]), "scores", mode="fail")
    with pytest.raises(SchemaMismatchError, match="evolve=True"):
        warehouse.write(scores([2]).assign(extra="x"), "scores", mode="append")
    with pytest.raises(SchemaMismatchError, match="'id'"):
        warehouse.write(pd.DataFrame({"id": ["text"], "score": [1.0]}), "scores",
                        mode="append")
    with pytest.raises(SchemaMismatchError, match="repeat"):
        warehouse.write(scores([5, 5]), "scores", mode="upsert", keys=["id"])
    assert warehouse.read_table("scores")["id"].tolist() == [1]
    warehouse.write(scores([2]).assign(extra="x"), "scores", mode="append", evolve=True)
    table = warehouse.read('SELECT "id", "extra" FROM "ML"."scores" ORDER BY "id"')
    assert table.to_dict("list") == {"id": [1, 2], "extra": [None, "x"]}


def test_missing_tables_identifiers_and_execute(warehouse: SnowflakeWarehouse) -> None:
    with pytest.raises(TableNotFoundError):
        warehouse.read_table("nope")
    with pytest.raises(TableNotFoundError):
        warehouse.read('SELECT * FROM "ML"."nope"')
    for bad in ['x"; DROP TABLE scores; --', "a'b", "a.b.c"]:
        with pytest.raises(InvalidIdentifierError):
            warehouse.write(scores([1]), bad)
        with pytest.raises(InvalidIdentifierError):
            warehouse.write(pd.DataFrame({bad: [1]}), "t")
        with pytest.raises(InvalidIdentifierError):
            warehouse.table_exists(bad)
    warehouse.write(scores([1]), "analytics.scores")
    assert warehouse.table_exists("analytics.scores") and not warehouse.table_exists("scores")
    warehouse.execute('DELETE FROM "analytics"."scores" WHERE "id" = :id', {"id": 1})
    assert warehouse.read_table("analytics.scores").empty
    with pytest.raises(WarehouseError):
        warehouse.execute("SELEC broken")
    assert "Snowflake" in warehouse.check_connection()


def test_connection_errors_never_show_the_password(
    warehouse: SnowflakeWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snowflake.connector

    def refuse(**kwargs: object) -> None:
        raise snowflake.connector.errors.DatabaseError(
            f"250001: Incorrect username or password was specified ({kwargs['password']})"
        )

    monkeypatch.setattr(snowflake.connector, "connect", refuse)
    with pytest.raises(WarehouseConnectionError) as error:
        warehouse.read("SELECT 1")
    assert PASSWORD not in str(error.value)
    assert "knot-test" in str(error.value)
    assert PASSWORD not in repr(warehouse)
