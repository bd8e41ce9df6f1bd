"""PostgreSQL upserts: which path runs when, and what each path keeps true.

An upsert into a table with a unique index on the keys deletes the matched rows and
copies the frame in only where nothing could tell that from an update; everywhere
else it runs ``INSERT ... ON CONFLICT`` without a table lock (writers side by side),
and a deadlock between writers is retried inside the write.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect import SqlWarehouse
from knot_prefect.blocks.warehouses._common import unique_key_name
from knot_prefect.blocks.warehouses._postgres import (
    WRITE_ATTEMPTS,
    PostgresAdbc,
    _AdbcSession,
    at_least,
    ingest_frame,
)
from knot_prefect.blocks.warehouses.base import ConcurrentWriteError
from knot_prefect.blocks.warehouses.identifiers import TableName

FRAME = pd.DataFrame({"id": [2, 3], "score": [20.0, 30.0], "name": ["b2", "c"]})


@pytest.fixture
def scores(pg_warehouse: SqlWarehouse) -> SqlWarehouse:
    """``scores`` created by an upsert (so with knot's unique index on ``id``)."""
    first = pd.DataFrame({"id": [1, 2], "score": [1.0, 2.0], "name": ["a", "b"]})
    pg_warehouse.write(first, "scores", mode="upsert", keys=["id"])
    return pg_warehouse


def _decider(
    warehouse: SqlWarehouse, decide: Callable[[_AdbcSession, TableName], bool]
) -> Callable[[pd.DataFrame], bool]:
    """What an upsert of a frame into ``scores`` would decide, asked in a rolled-back session."""
    path = warehouse._backend()
    assert isinstance(path, PostgresAdbc)

    def ask(frame: pd.DataFrame) -> bool:
        with path.connect() as con, con.cursor() as cur:
            session = _AdbcSession(cur, frame=ingest_frame(pa.Table.from_pandas(frame)))
            return decide(session, TableName("scores"))

    return ask


@pytest.fixture
def replaces_rows(scores: SqlWarehouse) -> Callable[[pd.DataFrame], bool]:
    """Whether an upsert of a frame into ``scores`` would delete and insert."""
    return _decider(scores, _AdbcSession.replaces_rows)


def _rows(warehouse: SqlWarehouse, table: str = "scores") -> list[tuple[object, ...]]:
    found = warehouse.read(f"select * from {table} order by id")
    return list(found.itertuples(index=False, name=None))


def test_an_upsert_into_a_plain_knot_table_deletes_and_inserts(
    scores: SqlWarehouse, replaces_rows: Callable[[pd.DataFrame], bool]
) -> None:
    assert replaces_rows(FRAME)
    scores.write(FRAME, "scores", mode="upsert", keys=["id"])
    assert _rows(scores) == [(1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c")]
    with pytest.raises(Exception, match=r"repeat|duplicate"):
        scores.write(pd.concat([FRAME, FRAME]), "scores", mode="upsert", keys=["id"])
    assert _rows(scores) == [(1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c")]


def _keyed(keys: dict[str, list[object]], scores: list[float]) -> pa.Table:
    return pa.table({**keys, "score": scores})


@pytest.mark.parametrize(
    "first, second",
    [
        (_keyed({"k": pa.array(["a", "b"])}, [1.0, 2.0]),
         _keyed({"k": pa.array(["b", "c"])}, [20.0, 30.0])),
        (_keyed({"k": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)])}, [1.0, 2.0]),
         _keyed({"k": pa.array([dt.date(2024, 1, 2), dt.date(2024, 1, 3)])}, [20.0, 30.0])),
        (_keyed({"k": pa.array([Decimal("1.50"), Decimal("2.25")], pa.decimal128(6, 2))},
                [1.0, 2.0]),
         _keyed({"k": pa.array([Decimal("2.25"), Decimal("3.00")], pa.decimal128(6, 2))},
                [20.0, 30.0])),
        (_keyed({"k": pa.array([1, 1]), "at": pa.array(
            [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)])},
                [1.0, 2.0]),
         _keyed({"k": pa.array([1, 1]), "at": pa.array(
             [dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC)])},
                [20.0, 30.0])),
    ],
    ids=["text", "date", "numeric", "int-and-timestamptz"],
)
def test_the_delete_and_insert_path_matches_keys_of_every_type(
    pg_warehouse: SqlWarehouse, first: pa.Table, second: pa.Table
) -> None:
    keys = [name for name in first.column_names if name != "score"]
    pg_warehouse.write(first, "keyed", mode="upsert", keys=keys)
    pg_warehouse.write(second, "keyed", mode="upsert", keys=keys)
    found = pg_warehouse.read_arrow("select * from keyed order by score")
    assert found.column("score").to_pylist() == [1.0, 20.0, 30.0]
    assert found.select(keys).slice(1).equals(second.select(keys))
    assert found.select(keys).slice(0, 1).equals(first.select(keys).slice(0, 1))


@pytest.mark.parametrize(
    "changes",
    [
        ("create function audit() returns trigger language plpgsql as "
         "$$ begin return new; end $$",
         "create trigger audited before update on scores for each row execute function audit()"),
        ("create table child (score_id bigint references scores (id) on delete cascade)",),
        ("create table log (id bigint)",
         "create rule logged as on delete to scores do also insert into log values (old.id)"),
        ("create publication changes for table scores",),
        ("alter table scores enable row level security",),
        ("create unique index other_key on scores (name)",),
    ],
    ids=["trigger", "foreign-key", "rule", "publication", "row-security", "second-unique"],
)
def test_a_table_others_watch_keeps_the_on_conflict_path(
    scores: SqlWarehouse, replaces_rows: Callable[[pd.DataFrame], bool], changes: tuple[str]
) -> None:
    for change in changes:
        scores.execute(change)
    assert not replaces_rows(FRAME)


def test_a_frame_without_every_column_keeps_the_on_conflict_path(
    scores: SqlWarehouse, replaces_rows: Callable[[pd.DataFrame], bool]
) -> None:
    assert not replaces_rows(FRAME[["id", "score"]])
    scores.write(FRAME[["id", "score"]], "scores", mode="upsert", keys=["id"])
    assert _rows(scores) == [(1, 1.0, "a"), (2, 20.0, "b"), (3, 30.0, None)]


def test_a_trigger_sees_updates_and_a_referencing_row_survives(scores: SqlWarehouse) -> None:
    scores.execute("create table seen (op text, id bigint)")
    scores.execute(
        "create function note() returns trigger language plpgsql as $$ begin "
        "insert into seen values (tg_op, new.id); return new; end $$"
    )
    scores.execute(
        "create trigger noted after insert or update on scores for each row execute function note()"
    )
    scores.execute("create table child (score_id bigint references scores (id) on delete cascade)")
    scores.execute("insert into child values (2)")
    scores.write(FRAME, "scores", mode="upsert", keys=["id"])
    seen = scores.read("select op, id from seen order by id")
    assert list(seen.itertuples(index=False, name=None)) == [("UPDATE", 2), ("INSERT", 3)]
    assert scores.read("select score_id from child")["score_id"].tolist() == [2]
    assert _rows(scores) == [(1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c")]


# A frame at least half the size of ``scores`` (one 8 kB page): the table is rebuilt.
BIG = pd.DataFrame({"id": range(2, 402), "score": [float(i) for i in range(2, 402)],
                    "name": [f"n{i}" for i in range(2, 402)]})


@pytest.fixture
def rebuilds(scores: SqlWarehouse) -> Callable[[pd.DataFrame], bool]:
    """Whether an upsert of a frame into ``scores`` would build the table anew."""
    return _decider(scores, lambda session, table: (
        session.replaces_rows(table) and session.rebuilds(table)))


def _oid(warehouse: SqlWarehouse) -> int:
    return int(warehouse.read("select 'scores'::regclass::oid::bigint as o")["o"][0])


def test_a_frame_near_the_table_size_rebuilds_it_with_its_unique_key(
    scores: SqlWarehouse, rebuilds: Callable[[pd.DataFrame], bool]
) -> None:
    scores.execute("insert into scores values (null, 0.0, 'no key')")  # unique allows it
    before = _oid(scores)
    assert not rebuilds(FRAME) and rebuilds(BIG)
    scores.write(BIG, "scores", mode="upsert", keys=["id"])
    assert _oid(scores) != before  # a new table took the name
    found = _rows(scores)
    assert found[:3] == [(1, 1.0, "a"), (2, 2.0, "n2"), (3, 3.0, "n3")] and len(found) == 402
    assert found[-1][1:] == (0.0, "no key")
    index = scores.read("select indexdef from pg_indexes where tablename = 'scores'")
    assert index["indexdef"].tolist() == [
        f'CREATE UNIQUE INDEX {unique_key_name(TableName("scores"))} ON public.scores '
        "USING btree (id)"
    ]
    scores.write(FRAME, "scores", mode="upsert", keys=["id"])  # the next upsert finds it
    assert _rows(scores)[:4] == [(1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c"), (4, 4.0, "n4")]


def test_a_rebuild_leaves_the_pooled_connection_settings_as_they_were(
    scores: SqlWarehouse, rebuilds: Callable[[pd.DataFrame], bool]
) -> None:
    # The rebuild raises work_mem and maintenance_work_mem for its own transaction only:
    # the pooled connection that runs the next call is back at the server's values.
    settings = ("select current_setting('work_mem') as w, "
                "current_setting('maintenance_work_mem') as m")
    before = scores.read(settings)
    assert rebuilds(BIG)
    scores.write(BIG, "scores", mode="upsert", keys=["id"])
    assert scores.read(settings).equals(before)


@pytest.mark.parametrize(("configured", "during"), [("4MB", "256MB"), ("1GB", "1GB")])
def test_the_write_raises_memory_settings_but_never_lowers_them(
    pg_warehouse: SqlWarehouse, configured: str, during: str
) -> None:
    # A server or role configured with more than knot's 256MB keeps its own value.
    path = pg_warehouse._backend()
    assert isinstance(path, PostgresAdbc)
    setting = "select current_setting('maintenance_work_mem')"
    with path.connect() as con, con.cursor() as cur:
        cur.execute(setting)
        before = cur.fetchone()
        cur.execute(f"set local maintenance_work_mem = '{configured}'")
        cur.execute(at_least("maintenance_work_mem", "256MB"))
        cur.execute(setting)
        assert cur.fetchone() == (during,)
        con.rollback()  # and only for the transaction
        cur.execute(setting)
        assert cur.fetchone() == before


@pytest.mark.parametrize(("role_setting", "during"), [("4MB", "256MB"), ("1GB", "1GB")])
def test_a_rebuild_by_a_role_with_its_own_memory_setting_builds_with_at_least_it(
    postgres_database: dict[str, str], role_setting: str, during: str
) -> None:
    """A team's role set with ``ALTER ROLE ... SET``: the rebuild's index build runs with
    the larger of that and knot's 256MB, and the role's sessions keep the role's value."""
    import psycopg

    role = f"knot_mem_{role_setting.lower()}_{postgres_database['name'][-6:]}"
    admin_dsn = postgres_database["dsn"]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"create role {role} login")
        admin.execute(f"alter role {role} set maintenance_work_mem = '{role_setting}'")
        admin.execute(f"grant all on schema public to {role}")
        # Each index build records the setting it ran with, whoever built it.
        admin.execute("create table index_builds (setting text)")
        admin.execute(f"grant insert on index_builds to {role}")
        admin.execute(
            "create function record_index_build() returns event_trigger language plpgsql "
            "as $$ begin insert into index_builds "
            "values (current_setting('maintenance_work_mem')); end $$")
        admin.execute("create event trigger index_builds on ddl_command_end "
                      "when tag in ('CREATE INDEX') execute function record_index_build()")
    try:
        user, _, rest = postgres_database["url"].partition("@")
        warehouse = SqlWarehouse(url=f"{user.rsplit('//', 1)[0]}//{role}@{rest}")
        warehouse.write(BIG.head(2), "scores", mode="upsert", keys=["id"])
        path = warehouse._backend()
        assert isinstance(path, PostgresAdbc)
        with path.connect() as con, con.cursor() as cur:
            session = _AdbcSession(cur, frame=ingest_frame(pa.Table.from_pandas(BIG)))
            assert session.replaces_rows(TableName("scores"))
            assert session.rebuilds(TableName("scores"))
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute("delete from index_builds")
        warehouse.write(BIG, "scores", mode="upsert", keys=["id"])
        assert len(warehouse.read("select * from scores")) == len(BIG)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            built = [row[0] for row in admin.execute("select setting from index_builds")]
        assert built == [during]
        assert warehouse.read("select current_setting('maintenance_work_mem') as m")[
            "m"].tolist() == [role_setting]
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute("drop event trigger if exists index_builds")


def test_a_rebuild_matches_composite_keys(pg_warehouse: SqlWarehouse) -> None:
    first = pa.table({"k": ["a", "b"], "d": [dt.date(2024, 1, 1)] * 2, "score": [1.0, 2.0]})
    pg_warehouse.write(first, "keyed", mode="upsert", keys=["k", "d"])
    big = pa.table({"k": ["b"] * 300, "score": [float(i) for i in range(300)],
                    "d": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(300)]})
    pg_warehouse.write(big, "keyed", mode="upsert", keys=["k", "d"])
    found = pg_warehouse.read("select k, d, score from keyed order by k, d")
    assert len(found) == 301 and found["score"].tolist()[:3] == [1.0, 0.0, 1.0]


def test_writers_beside_a_rebuild_never_duplicate_nor_lose_a_key(scores: SqlWarehouse) -> None:
    # Each frame is near the table's size when it starts: some writers rebuild, the
    # others wait for the rebuilt table and upsert into it.
    def frame(first: int) -> pd.DataFrame:
        ids = range(first, first + 400)
        return pd.DataFrame({"id": ids, "score": [float(first)] * 400,
                             "name": [f"n{i}" for i in ids]})

    errors: list[BaseException] = []

    def upsert(first: int) -> None:
        try:
            scores.write(frame(first), "scores", mode="upsert", keys=["id"])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    writers = [threading.Thread(target=upsert, args=(i * 200,)) for i in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert not errors, errors
    found = _rows(scores)
    ids = [int(str(row[0])) for row in found]
    assert ids == sorted(set(ids)) == list(range(1400))
    assert [name for _, _, name in found] == [f"n{i}" for i in ids]


@pytest.mark.parametrize(
    "change",
    [
        "create view best as select * from scores where score > 1",
        "grant select on scores to public",
        "comment on table scores is 'kept'",
        "alter table scores alter column name set default 'x'",
        "alter table scores add constraint positive check (score > 0)",
        "create index by_name on scores (name)",
        "alter table scores set (fillfactor = 70)",
    ],
    ids=["view", "grant", "comment", "default", "check", "second-index", "storage"],
)
def test_a_table_a_rebuild_would_not_reproduce_is_upserted_in_place(
    scores: SqlWarehouse, rebuilds: Callable[[pd.DataFrame], bool], change: str
) -> None:
    scores.execute(change)
    before = _oid(scores)
    assert not rebuilds(BIG)
    scores.write(BIG, "scores", mode="upsert", keys=["id"])
    assert _oid(scores) == before and len(_rows(scores)) == 401


@pytest.fixture
def other_writer(postgres_database: dict[str, str]) -> Iterator[object]:
    """A second session of the test's database (autocommit off), closed at the end."""
    import psycopg

    with psycopg.connect(postgres_database["dsn"]) as connection:
        yield connection


def test_upserts_with_a_unique_index_run_beside_another_writer(
    scores: SqlWarehouse, other_writer: object
) -> None:
    import psycopg

    assert isinstance(other_writer, psycopg.Connection)
    # Another upsert of other keys, not yet committed, holds the table's row lock.
    other_writer.execute(
        "insert into scores values (9, 9.0, 'i') on conflict (id) do update set score = 9.0"
    )
    done = threading.Event()
    errors: list[BaseException] = []

    def upsert() -> None:
        try:
            scores.write(FRAME, "scores", mode="upsert", keys=["id"])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        done.set()

    worker = threading.Thread(target=upsert)
    worker.start()
    finished_beside = done.wait(timeout=60)
    other_writer.commit()
    worker.join()
    assert not errors, errors
    assert finished_beside, "the upsert waited for the other writer's commit"
    assert _rows(scores) == [
        (1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c"), (9, 9.0, "i"),
    ]


@pytest.mark.parametrize("failures", [1, WRITE_ATTEMPTS])
def test_a_deadlock_is_retried_inside_the_write_then_reported(
    scores: SqlWarehouse, failures: int
) -> None:
    # The first ``failures`` attempts lose a deadlock (a sequence is not rolled back).
    scores.execute("create sequence tries")
    scores.execute(
        "create function lose() returns trigger language plpgsql as $$ begin "
        f"if nextval('tries') <= {failures} then "
        "raise exception 'deadlock detected' using errcode = '40P01'; end if; "
        "return null; end $$"
    )
    scores.execute(
        "create trigger loses before insert on scores for each statement execute function lose()"
    )
    if failures < WRITE_ATTEMPTS:
        scores.write(FRAME, "scores", mode="upsert", keys=["id"])
        assert _rows(scores) == [(1, 1.0, "a"), (2, 20.0, "b2"), (3, 30.0, "c")]
    else:
        with pytest.raises(ConcurrentWriteError, match="write again"):
            scores.write(FRAME, "scores", mode="upsert", keys=["id"])
        assert _rows(scores) == [(1, 1.0, "a"), (2, 2.0, "b")]
    tries = scores.read("select last_value from tries")["last_value"].tolist()
    assert tries == [failures + 1 if failures < WRITE_ATTEMPTS else WRITE_ATTEMPTS]


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_deadlock_reported_by_the_server_is_a_concurrent_write_error(
    postgres_database: dict[str, str], fast_path: bool
) -> None:
    warehouse = SqlWarehouse(url=postgres_database["url"], fast_path=fast_path)
    with pytest.raises(ConcurrentWriteError, match="write again"):
        warehouse.execute(
            "do $$ begin raise exception 'deadlock detected' using errcode = '40P01'; end $$"
        )
