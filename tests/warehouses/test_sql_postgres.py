"""PostgreSQL specifics: the ADBC bulk path, credentials, replace's swap, NUMERIC."""

from __future__ import annotations

import traceback
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from knot_prefect import SqlWarehouse
from knot_prefect.blocks.warehouses.base import WarehouseConnectionError, WarehouseError
from tests.services import PostgresService

SECRET = "s3cr3t-Pa55:@/word"


def test_postgres_uses_the_adbc_path_unless_turned_off(postgres_database: dict[str, str]) -> None:
    fast = SqlWarehouse(url=postgres_database["url"])
    slow = SqlWarehouse(url=postgres_database["url"], fast_path=False)
    assert fast.uses_fast_path() and not slow.uses_fast_path()
    assert "via ADBC" in fast.check_connection()
    assert "via SQLAlchemy" in slow.check_connection()
    assert "PostgreSQL 1" in fast.check_connection()


@pytest.mark.parametrize("fast_path", [True, False])
def test_bad_credentials_name_the_server_but_never_the_secret(
    postgres_service: PostgresService, fast_path: bool
) -> None:
    url = postgres_service.sqlalchemy_url("postgres").replace("postgres@", "nobody@")
    warehouse = SqlWarehouse(url=url, password=SECRET, fast_path=fast_path)
    with pytest.raises(WarehouseConnectionError) as caught:
        warehouse.read("select 1")
    text = "".join(traceback.format_exception(caught.value))
    assert "nobody" in str(caught.value) and str(postgres_service.port) in str(caught.value)
    assert "password of the block" in str(caught.value)
    for form in (SECRET, "s3cr3t"):
        assert form not in text
        assert form not in repr(warehouse) and form not in str(warehouse)
        assert form not in warehouse.describe()


def test_a_password_in_the_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        SqlWarehouse(url="postgresql://analyst:hunter2@db.internal/warehouse")
    assert "password field" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_check_connection_reports_without_the_password(postgres_database: dict[str, str]) -> None:
    # Trust authentication ignores the password, so the block connects with it set.
    warehouse = SqlWarehouse(url=postgres_database["url"], password=SECRET)
    detail = warehouse.check_connection()
    assert postgres_database["name"] in detail and SECRET not in detail


def test_replace_blocked_by_a_dependent_view_leaves_table_and_no_staging(
    pg_warehouse: SqlWarehouse,
) -> None:
    pg_warehouse.write(pd.DataFrame({"id": [1, 2]}), "base")
    pg_warehouse.execute("create view base_view as select id from base")
    with pytest.raises(WarehouseError, match="depend"):
        pg_warehouse.write(pd.DataFrame({"id": [7]}), "base", mode="replace")
    assert pg_warehouse.read_table("base")["id"].tolist() == [1, 2]
    leftovers = pg_warehouse.read(
        "select table_name from information_schema.tables where table_name like :p",
        {"p": "\\_knot%"},
    )
    assert leftovers.empty


def test_append_into_differently_typed_columns_goes_through_the_server(
    pg_warehouse: SqlWarehouse,
) -> None:
    pg_warehouse.execute(
        "create table typed (id integer primary key, name varchar(20), amount numeric(12, 4))"
    )
    frame = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "name": ["a", "b"],
            "amount": pa.array([Decimal("1.5"), Decimal("2.25")], pa.decimal128(6, 2)),
        }
    )
    pg_warehouse.write(frame, "typed")
    back = pg_warehouse.read_table_arrow("typed")
    assert back.schema.field("amount").type == pa.decimal128(12, 4)
    assert back.column("amount").to_pylist() == [Decimal("1.5000"), Decimal("2.2500")]
    with pytest.raises(WarehouseError, match="duplicate key"):
        pg_warehouse.write(frame, "typed")  # the primary key still holds
    assert pg_warehouse.read_table("typed")["id"].tolist() == [1, 2]


def test_unconstrained_numeric_reads_as_decimal(pg_warehouse: SqlWarehouse) -> None:
    got = pg_warehouse.read_arrow("select 1.5::numeric as a union all select 2.125::numeric")
    assert got.schema.field("a").type == pa.decimal128(38, 3)
    assert got.column("a").to_pylist() == [Decimal("1.5"), Decimal("2.125")]


def test_read_batches_with_parameters_pages_a_server_side_cursor(
    pg_warehouse: SqlWarehouse,
) -> None:
    pg_warehouse.write(pd.DataFrame({"id": range(1000), "amount": [Decimal("0.5")] * 1000}), "t")
    batches = list(
        pg_warehouse.read_batches("select * from t where id >= :lo order by id", {"lo": 10}, 300)
    )
    assert [b.num_rows for b in batches] == [300, 300, 300, 90]
    assert pa.types.is_decimal(batches[0].schema.field("amount").type)


def terminate_other_sessions(dsn: str, query_like: str = "%") -> int:
    """End the database's other sessions from the server side, as a restart does."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = "
            "current_database() and pid <> pg_backend_pid() and query like %s",
            (query_like,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_connection_lost_mid_query_is_a_connection_error(
    postgres_database: dict[str, str], fast_path: bool
) -> None:
    import threading
    import time

    warehouse = SqlWarehouse(url=postgres_database["url"], fast_path=fast_path)
    warehouse.check_connection()
    caught: list[BaseException] = []

    def slow_read() -> None:
        try:
            warehouse.read("select pg_sleep(30) as slept")
        except BaseException as exc:
            caught.append(exc)

    reader = threading.Thread(target=slow_read)
    reader.start()
    deadline = time.monotonic() + 20
    while not terminate_other_sessions(postgres_database["dsn"], "%pg_sleep%"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    reader.join(timeout=20)
    assert len(caught) == 1
    assert isinstance(caught[0], WarehouseConnectionError), repr(caught[0])
    assert caught[0].transient
    assert "terminating connection" in str(caught[0])
