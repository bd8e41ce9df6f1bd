"""The Warehouse interface's promises, checked on every backend path.

Each test runs on DuckDB (file), PostgreSQL through ADBC and through SQLAlchemy,
SQLite, Snowflake (fakesnow) and the Parquet lake on a local folder, moto's S3 and
the GCS emulator: real stores that keep and return rows. BigQuery, reachable only at
its client's boundary, runs the promises kept before a request is sent (names, modes,
keys, limits). Where a store has a server or a file other processes share, the
writers are real processes: killed mid-write, eight at once, across a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from knot_prefect.blocks.warehouses.base import (
    SchemaMismatchError,
    TableExistsError,
    TableNotFoundError,
    Warehouse,
    WarehouseError,
)
from knot_prefect.blocks.warehouses.identifiers import InvalidIdentifierError, TableName
from tests.warehouses._contender import ROOT, WriterPool, block_spec
from tests.warehouses._writer import frame
from tests.warehouses.conftest import ALL_BACKENDS

PARIS = dt.timezone(dt.timedelta(hours=1))


def known_gap(request: pytest.FixtureRequest, backend: str, gaps: dict[str, str]) -> None:
    """Mark a promise ``backend`` does not keep yet as an expected (strict) failure."""
    if backend in gaps:
        request.applymarker(pytest.mark.xfail(reason=gaps[backend], strict=True))


def rows(warehouse: Warehouse, table: str) -> list[dict[str, Any]]:
    """The table's rows as dicts, sorted by ``id``."""
    return sorted(warehouse.read_table_arrow(table).to_pylist(), key=lambda r: r["id"])


def scores(ids: list[int], score: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "score": [score + i / 100 for i in ids]})


# -- modes ---------------------------------------------------------------------------------
def test_append_creates_the_table_then_adds_rows(warehouse: Warehouse) -> None:
    first = warehouse.write(scores([1, 2]), "scores")
    second = warehouse.write(scores([3]), "scores", mode="append")
    assert (first.rows, second.rows) == (2, 1)
    assert (first.table, first.mode) == ("scores", "append")
    assert first.seconds > 0
    assert [r["id"] for r in rows(warehouse, "scores")] == [1, 2, 3]


def test_replace_swaps_rows_and_schema(warehouse: Warehouse) -> None:
    warehouse.write(scores([1, 2, 3]), "scores")
    warehouse.write(pd.DataFrame({"id": [9], "label": ["new"]}), "scores", mode="replace")
    assert rows(warehouse, "scores") == [{"id": 9, "label": "new"}]


def test_upsert_updates_matches_inserts_the_rest_and_never_duplicates(
    warehouse: Warehouse,
) -> None:
    warehouse.write(scores([1, 2, 3], 0.1), "scores")
    update = scores([2, 3, 4], 0.9)
    for _ in range(3):  # a retried publish must leave the same table
        result = warehouse.write(update, "scores", mode="upsert", keys=["id"])
        assert result.rows == 3
    got = rows(warehouse, "scores")
    assert [r["id"] for r in got] == [1, 2, 3, 4]
    assert got[0]["score"] == pytest.approx(0.11)
    assert [r["score"] for r in got[1:]] == pytest.approx([0.92, 0.93, 0.94])


def test_upsert_on_composite_keys_keeps_columns_the_frame_lacks(warehouse: Warehouse) -> None:
    base = pd.DataFrame(
        {"day": ["d1", "d1", "d2"], "id": [1, 2, 1], "score": [0.1, 0.2, 0.3], "note": list("abc")}
    )
    warehouse.write(base, "daily")
    change = pd.DataFrame({"day": ["d1", "d3"], "id": [2, 1], "score": [0.8, 0.9]})
    warehouse.write(change, "daily", mode="upsert", keys=["day", "id"])
    got = sorted(warehouse.read_table_arrow("daily").to_pylist(), key=lambda r: (r["day"], r["id"]))
    assert got == [
        {"day": "d1", "id": 1, "score": 0.1, "note": "a"},
        {"day": "d1", "id": 2, "score": 0.8, "note": "b"},
        {"day": "d2", "id": 1, "score": 0.3, "note": "c"},
        {"day": "d3", "id": 1, "score": 0.9, "note": None},
    ]


def test_upsert_creates_a_missing_table(warehouse: Warehouse) -> None:
    warehouse.write(scores([1, 2]), "fresh", mode="upsert", keys=["id"])
    assert [r["id"] for r in rows(warehouse, "fresh")] == [1, 2]


def test_fail_mode_creates_a_missing_table_and_refuses_an_existing_one(
    warehouse: Warehouse,
) -> None:
    warehouse.write(scores([1]), "once", mode="fail")
    with pytest.raises(TableExistsError, match="once already exists"):
        warehouse.write(scores([2]), "once", mode="fail")
    assert [r["id"] for r in rows(warehouse, "once")] == [1]


# SQLite has no schemas to create (a "schema" there is an attached database file).
@pytest.mark.parametrize("backend", ["duckdb", "postgres-adbc", "postgres-sqlalchemy"])
def test_schema_qualified_tables(make: Callable[[str], Warehouse], backend: str) -> None:
    warehouse = make(backend)
    warehouse.write(scores([1]), "analytics.scores")
    assert warehouse.table_exists("analytics.scores")
    assert not warehouse.table_exists("scores")
    assert [r["id"] for r in rows(warehouse, "analytics.scores")] == [1]


# -- schema changes and types ----------------------------------------------------------------
def test_new_columns_are_an_error_unless_evolve(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "scores")
    wider = scores([2]).assign(segment=["gold"])
    with pytest.raises(SchemaMismatchError, match=r"'segment'.*evolve=True"):
        warehouse.write(wider, "scores")
    assert [r["id"] for r in rows(warehouse, "scores")] == [1]
    warehouse.write(wider, "scores", evolve=True)
    assert [r["segment"] for r in rows(warehouse, "scores")] == [None, "gold"]


def test_evolve_with_names_adds_only_those_columns(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "scores")
    wider = scores([2]).assign(segment=["gold"], note=["x"])
    with pytest.raises(SchemaMismatchError, match=r"lacks: 'note'\. Only 'segment'"):
        warehouse.write(wider, "scores", evolve=["segment"])
    assert sorted(rows(warehouse, "scores")[0]) == ["id", "score"]
    warehouse.write(wider.drop(columns="note"), "scores", evolve=["segment", "other"])
    assert [r["segment"] for r in rows(warehouse, "scores")] == [None, "gold"]


def test_a_type_mismatch_names_the_column_and_both_types(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "scores")
    with pytest.raises(SchemaMismatchError, match=r"'score' is string .* float in the table"):
        warehouse.write(pd.DataFrame({"id": [2], "score": ["high"]}), "scores")
    assert len(rows(warehouse, "scores")) == 1


def test_narrower_numbers_widen_into_existing_columns(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "scores")
    narrow = pa.table({"id": pa.array([2], pa.int32()), "score": pa.array([3], pa.int16())})
    warehouse.write(narrow, "scores")
    assert rows(warehouse, "scores")[1] == {"id": 2, "score": 3.0}


def round_trip_frame() -> pa.Table:
    stamps = [dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=PARIS), None, None]
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "small": pa.array([-7, None, 32000], pa.int32()),
            "ratio": pa.array([0.25, None, -1e300], pa.float64()),
            "flag": pa.array([True, False, None], pa.bool_()),
            "name": pa.array(["Zoë", None, "'; --"], pa.string()),
            "at": pa.array(stamps, pa.timestamp("us", "Europe/Paris")),
            "amount": pa.array([Decimal("12345.67"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
            "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1999, 12, 31)], pa.date32()),
        }
    )


def test_types_round_trip(warehouse: Warehouse, backend: str) -> None:
    sent = round_trip_frame()
    warehouse.write(sent, "typed")
    back = sorted(warehouse.read_table_arrow("typed").to_pylist(), key=lambda r: r["id"])
    expected = sent.to_pylist()
    for got, want in zip(back, expected, strict=True):
        at = got.pop("at")
        want_at = want.pop("at")
        if want_at is None:
            assert at is None
        elif backend == "sqlite":  # SQLite keeps no zone: UTC wall time comes back
            assert at == want_at.astimezone(dt.UTC).replace(tzinfo=None)
        elif backend.startswith("lake"):  # Parquet keeps the zone the frame had
            assert at == want_at and at.utcoffset() == want_at.utcoffset()
        else:
            assert at == want_at and at.utcoffset() == dt.timedelta(0)
        assert got == want
    schema = warehouse.read_table_arrow("typed").schema
    assert pa.types.is_decimal(schema.field("amount").type)
    assert pa.types.is_boolean(schema.field("flag").type)
    assert pa.types.is_integer(schema.field("small").type)


def test_all_null_and_categorical_columns_are_written(warehouse: Warehouse) -> None:
    frame = pd.DataFrame({"id": [1, 2], "empty": [None, None], "tier": ["a", "b"]})
    frame["tier"] = frame["tier"].astype("category")
    warehouse.write(frame, "odd")
    assert rows(warehouse, "odd") == [
        {"id": 1, "empty": None, "tier": "a"},
        {"id": 2, "empty": None, "tier": "b"},
    ]


def test_polars_and_arrow_frames_are_accepted(warehouse: Warehouse) -> None:
    import polars as pl

    warehouse.write(pl.DataFrame({"id": [1], "score": [0.1]}), "scores")
    warehouse.write(pa.table({"id": [2], "score": [0.2]}), "scores")
    warehouse.write(pa.record_batch({"id": [3], "score": [0.3]}), "scores")
    assert [r["id"] for r in rows(warehouse, "scores")] == [1, 2, 3]


# -- clear errors ------------------------------------------------------------------------------
def test_unknown_mode_and_upsert_without_keys(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match=r"Unknown write mode 'merge'.*append, replace"):
        warehouse.write(scores([1]), "scores", mode="merge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs keys"):
        warehouse.write(scores([1]), "scores", mode="upsert")
    assert not warehouse.table_exists("scores")


def test_upsert_keys_must_be_present_non_null_and_unique(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "scores")
    with pytest.raises(SchemaMismatchError, match="'customer' are not columns"):
        warehouse.write(scores([1]), "scores", mode="upsert", keys=["customer"])
    with pytest.raises(SchemaMismatchError, match="null in 1 row"):
        nulls = pa.table({"id": pa.array([2, None]), "score": [0.1, 0.2]})
        warehouse.write(nulls, "scores", mode="upsert", keys=["id"])
    with pytest.raises(SchemaMismatchError, match=r"repeat .* e.g. \{'id': 5\}"):
        warehouse.write(scores([5, 5, 6]), "scores", mode="upsert", keys=["id"])
    assert [r["id"] for r in rows(warehouse, "scores")] == [1]


def test_missing_tables_raise_table_not_found(
    warehouse: Warehouse, backend: str, request: pytest.FixtureRequest
) -> None:
    known_gap(request, backend, {"snowflake": "the message does not list the tables"})
    warehouse.write(scores([1]), "present")
    with pytest.raises(TableNotFoundError, match=r"absent does not exist.*present"):
        warehouse.read_table("absent")
    with pytest.raises(TableNotFoundError, match="absent"):
        warehouse.read("select * from absent")
    assert warehouse.table_exists("present") and not warehouse.table_exists("absent")


def test_an_empty_frame_is_a_logged_no_op(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("prefect.knot_prefect.warehouses").propagate = True
    result = warehouse.write(scores([]), "nothing", mode="replace")
    assert result.rows == 0
    assert not warehouse.table_exists("nothing")
    assert "Nothing to write to nothing: the frame is empty." in caplog.text


def test_a_write_the_database_rejects_leaves_the_table_as_it_was(
    warehouse: Warehouse, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend.startswith(("lake", "delta", "iceberg")):
        pytest.skip("a lake has no constraints (see test_parquet_lake's failed writes)")
    known_gap(request, backend, {"snowflake": "fakesnow does not enforce NOT NULL"})
    warehouse.execute("create table strict (id bigint not null, score double precision not null)")
    warehouse.write(scores([1, 2]), "strict")
    before = rows(warehouse, "strict")
    bad = pd.DataFrame({"id": [3, 4, 5], "score": [0.3, 0.4, None]})
    for mode, keys in [("append", None), ("upsert", ["id"])]:
        with pytest.raises(WarehouseError):
            warehouse.write(bad, "strict", mode=mode, keys=keys)  # type: ignore[arg-type]
        assert rows(warehouse, "strict") == before
    # evolve inside a failed write is rolled back too
    with pytest.raises(WarehouseError):
        warehouse.write(bad.assign(extra=1), "strict", evolve=True)
    assert list(warehouse.read_table("strict").columns) == ["id", "score"]


# -- safe SQL ----------------------------------------------------------------------------------
INJECTIONS = [
    'x"; drop table victim; --',
    "x'; drop table victim; --",
    "x`; drop table victim; --",
    "a.b.c",
    "victim; delete from victim",
    "",
    " leading",
    "x\x00y",
    "(select 1)",
]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_strings_are_refused_in_every_identifier_position(
    warehouse: Warehouse, bad: str
) -> None:
    warehouse.write(scores([1, 2]), "victim")
    attempts = [
        lambda: warehouse.write(scores([3]), bad),
        lambda: warehouse.write(scores([3]), f"{bad}.victim"),
        lambda: warehouse.write(scores([3]).rename(columns={"score": bad}), "victim", evolve=True),
        lambda: warehouse.write(
            scores([3]).rename(columns={"id": bad}), "other", mode="upsert", keys=[bad]
        ),
        lambda: warehouse.read_table(bad),
        lambda: warehouse.read_table("victim", columns=[bad]),
        lambda: warehouse.table_exists(bad),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidIdentifierError):
            attempt()
    assert [r["id"] for r in rows(warehouse, "victim")] == [1, 2]


def test_values_are_bound_never_formatted(warehouse: Warehouse) -> None:
    warehouse.write(scores([1, 2]), "victim")
    hostile = "1; drop table victim; --"
    found = warehouse.read(
        "select * from victim where cast(id as varchar(40)) = :v", {"v": hostile}
    )
    assert found.empty
    assert warehouse.read("select id from victim where id = :id", {"id": 2})["id"].tolist() == [2]
    assert [r["id"] for r in rows(warehouse, "victim")] == [1, 2]


def test_placeholders_inside_literals_and_casts_are_left_alone(warehouse: Warehouse) -> None:
    warehouse.write(scores([1]), "victim")
    got = warehouse.read(
        "select ':id' as \"text\", cast(:id as integer) as \"id\" from victim where id = :id",
        {"id": 1},
    )
    assert got.to_dict("records") == [{"text": ":id", "id": 1}]
    with pytest.raises(WarehouseError, match=":missing but params has no value"):
        warehouse.read("select * from victim where id = :missing", {"id": 1})


# -- reads -------------------------------------------------------------------------------------
def test_reads_as_pandas_arrow_and_batches(warehouse: Warehouse) -> None:
    warehouse.write(scores(list(range(1, 251))), "scores")
    frame = warehouse.read("select id from scores where id > :lo order by id", {"lo": 200})
    assert frame["id"].tolist() == list(range(201, 251))
    table = warehouse.read_arrow('select count(*) as "n" from scores')
    assert table.column("n")[0].as_py() == 250
    assert list(warehouse.read_table("scores", columns=["score"]).columns) == ["score"]
    for params in (None, {"lo": 0}):
        sql = "select id from scores" + (" where id > :lo" if params else "") + " order by id"
        batches = list(warehouse.read_batches(sql, params, batch_rows=100))
        assert all(batch.num_rows <= 100 for batch in batches)
        ids = [i for batch in batches for i in batch.column(0).to_pylist()]
        assert ids == list(range(1, 251))


# -- identifier limits -------------------------------------------------------------------------
def test_names_over_the_backend_limit_are_refused_never_truncated(
    warehouse: Warehouse, backend: str
) -> None:
    first, second = "P" * 63 + "A" * 10, "P" * 63 + "B" * 10
    long_column = "c" * 100
    if backend.startswith("postgres"):
        warehouse.write(scores([1]), "P" * 63)  # exactly the limit is fine
        for attempt in (
            lambda: warehouse.write(scores([1]), second, mode="replace"),
            lambda: warehouse.write(scores([1]).rename(columns={"score": long_column}), "t"),
            lambda: warehouse.read_table(second),
            lambda: warehouse.write(scores([1]), "x" * 64, mode="upsert", keys=["id"]),
        ):
            with pytest.raises(InvalidIdentifierError, match="63 bytes"):
                attempt()
        assert not warehouse.table_exists("t")
        return
    warehouse.write(scores([1]), first)
    warehouse.write(scores([2]), second, mode="replace")
    assert [r["id"] for r in rows(warehouse, first)] == [1]
    warehouse.write(scores([3]).rename(columns={"score": long_column}), "wide")
    assert warehouse.read_table("wide").columns.tolist() == ["id", long_column]


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_bad_writes_are_refused_before_the_store_is_touched(
    make: Callable[[str], Warehouse], backend: str, request: pytest.FixtureRequest
) -> None:
    """Modes, keys, unsafe names and over-long names, on every path (BigQuery too)."""
    warehouse = make(backend)
    limit = warehouse.identifier_limit()
    longest = limit.max_bytes if limit else 128
    with pytest.raises(ValueError, match=r"Unknown write mode 'merge'"):
        warehouse.write(scores([1]), "scores", mode="merge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs keys"):
        warehouse.write(scores([1]), "scores", mode="upsert")
    for bad in INJECTIONS:
        with pytest.raises(InvalidIdentifierError):
            warehouse.write(scores([1]), bad)
    too_long = [  # refused, naming the limit, never cut to fit
        lambda: warehouse.write(scores([1]), "n" * (longest + 1)),
        lambda: warehouse.write(scores([1]).rename(columns={"score": "c" * (longest + 1)}), "t"),
        lambda: warehouse.write(scores([1]), "t", mode="upsert", keys=["k" * (longest + 1)]),
    ]
    for attempt in too_long:
        with pytest.raises(InvalidIdentifierError, match=str(longest) if limit else "1-128"):
            attempt()
    if backend == "bigquery":  # nothing reached the API: not even a token was asked for
        endpoint = request.getfixturevalue("bigquery_endpoint")
        assert endpoint.requests == []
    else:
        assert not warehouse.table_exists("t") and not warehouse.table_exists("scores")


# -- reads by name -----------------------------------------------------------------------------
def test_reading_an_unknown_column_names_it_and_lists_the_columns(
    warehouse: Warehouse, backend: str, request: pytest.FixtureRequest
) -> None:
    known_gap(request, backend, {"snowflake": "the database's binder error comes through"})
    warehouse.write(scores([1]), "scores")
    with pytest.raises(SchemaMismatchError, match=r"no column 'nope'.*id, score"):
        warehouse.read_table("scores", columns=["id", "nope"])


def test_extract_reads_a_table_whose_name_has_a_space(warehouse: Warehouse) -> None:
    from knot_prefect.tasks import extract

    warehouse.write(scores([1, 2]), "a b")
    assert sorted(extract.fn(warehouse, "a b")["id"]) == [1, 2]
    assert extract.fn(warehouse, 'select count(*) as "n" from "a b"')["n"].tolist() == [2]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_extract_of_nothing_is_a_clear_error(warehouse: Warehouse, text: str) -> None:
    from knot_prefect.tasks import extract

    with pytest.raises(ValueError, match="needs a table name or a SQL query"):
        extract.fn(warehouse, text)


# -- concurrent writers ------------------------------------------------------------------------
UPSERTERS = 8
STEP = 250  # the upserters' key ranges overlap by half
ROWS = 2 * STEP
PIECES = 4  # writes per writer: the writers take turns many times over
APPENDED_IDS = 10_000_000  # the appender writes keys of its own, far from the upserts
#: Backends that let several processes write at once, and who made the table: knot (a
#: unique key on the keys) or the user (no unique key: knot locks the table to merge).
#: The lake on GCS is absent: the suite's emulator ignores ``ifGenerationMatch``, so
#: only its check before the switch is tested there (the stale-manifest test below).
CONCURRENT = {
    "postgres-adbc": "knot", "postgres-sqlalchemy": "user",
    "duckdb": "knot", "lake-local": "knot", "lake-s3": "knot",
    "iceberg-local": "knot",
}


@pytest.fixture(scope="module")
def writer_pool() -> Iterator[WriterPool]:
    """Nine writer processes, started once for every concurrency test of the module."""
    pool = WriterPool(UPSERTERS + 1)
    yield pool
    pool.close()


@pytest.mark.heavy
@pytest.mark.parametrize("backend", list(CONCURRENT))
def test_concurrent_writers_never_duplicate_nor_lose_a_row(
    make: Callable[[str], Warehouse], backend: str, writer_pool: WriterPool
) -> None:
    """Eight upserters with overlapping keys and an appender, nine processes at once.

    Each write lands whole or raises ``ConcurrentWriteError`` (DuckDB's file lock, the
    lake's manifest switch), which the writer retries as the I/O tasks do. In the end
    the table holds every key exactly once: 0 duplicates, 0 lost.
    """
    warehouse = make(backend)
    if CONCURRENT[backend] == "user":
        warehouse.execute("create table victim (id bigint, score double precision, label text)")
        warehouse.write(frame(STEP), "victim")
    else:
        warehouse.write(frame(STEP), "victim", mode="upsert", keys=["id"])
    writers = [("upsert", i * STEP) for i in range(UPSERTERS)]
    writers += [("append", APPENDED_IDS)]

    outcomes = writer_pool.run(block_spec(warehouse), writers, ROWS, pieces=PIECES)

    expected = set(range(STEP))
    for (_, first_id), outcome in zip(writers, outcomes, strict=True):
        assert outcome in {"done", "gave-up"}
        if outcome == "done":
            expected |= set(range(first_id, first_id + ROWS))
    assert outcomes.count("done") >= len(writers) - 1
    table = warehouse.read_table_arrow("victim")
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "a key was written twice"
    assert set(ids) == expected, "a successful write was lost, or a refused one landed"
    labels = table.column("label").to_pylist()
    assert labels == [f"row-{i}" for i in ids]


TURNS = 25  # writes per DuckDB appender: 100 hand-overs of the file in all


@pytest.mark.heavy
def test_duckdb_writers_taking_many_turns_lose_no_committed_append(
    make: Callable[[str], Warehouse], writer_pool: WriterPool
) -> None:
    """Four processes append a frame each to one DuckDB file in 25 writes, taking turns.

    DuckDB gives its file lock back while the closing process is still finishing the
    file: a process that opened it in that moment lost the append committed just
    before. knot's own turn, held until DuckDB has closed the file, keeps every row.
    """
    warehouse = make("duckdb")
    warehouse.write(frame(1), "victim")
    writers = [("append", APPENDED_IDS + i * ROWS) for i in range(4)]

    outcomes = writer_pool.run(block_spec(warehouse), writers, ROWS, pieces=TURNS)

    assert outcomes == ["done"] * len(writers)
    ids = warehouse.read_table_arrow("victim").column("id").to_pylist()
    assert len(ids) == len(set(ids)), "an append was written twice"
    expected = {0}.union(*(range(first, first + ROWS) for _, first in writers))
    assert set(ids) == expected, f"{len(expected - set(ids))} committed rows were lost"


@pytest.mark.parametrize("backend", ["lake-local", "lake-s3", "lake-gcs"])
def test_a_lake_write_whose_table_changed_meanwhile_is_refused_whole(
    make: Callable[[str], Warehouse], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer switches the manifest between this write's files and its switch.

    The late write raises ``ConcurrentWriteError``: the table is exactly as the other
    write left it and the late write's files are gone. (On GCS this is what the suite's
    emulator can show: it ignores ``ifGenerationMatch``, so the race inside the switch
    itself is left to real GCS.)
    """
    from knot_prefect.blocks.warehouses.base import ConcurrentWriteError
    from knot_prefect.blocks.warehouses.lake import writes

    first, other = make(backend), make(backend)
    other = other.model_copy(update={"path": first.path})  # type: ignore[attr-defined]
    first.write(frame(10), "victim", mode="upsert", keys=["id"])
    storage = first._storage()  # type: ignore[attr-defined]
    pattern = f"{storage.table_dir(TableName.parse('victim'))}/data/*.parquet"
    files_before = set(storage.fs.glob(pattern))
    late_files: set[str] = set()
    real_switch = writes.switch_manifest

    def other_writer_first(*args: Any, **kwargs: Any) -> None:
        if not late_files:  # only the late write's switch: the other write's runs as is
            late_files.update(set(storage.fs.glob(pattern)) - files_before)
            other.write(frame(5, first_id=100), "victim", mode="upsert", keys=["id"])
        real_switch(*args, **kwargs)

    monkeypatch.setattr(writes, "switch_manifest", other_writer_first)
    with pytest.raises(ConcurrentWriteError, match="Retrying the write is safe"):
        first.write(frame(5, first_id=200), "victim", mode="upsert", keys=["id"])

    assert [r["id"] for r in rows(first, "victim")] == [*range(10), *range(100, 105)]
    storage.fs.invalidate_cache()
    assert late_files, "the late write wrote no files before its switch"
    assert not late_files & set(storage.fs.glob(pattern)), "the late write left its files"


# -- killed writers and restarted servers -------------------------------------------------------
#: Where each store's write has its rows in place but not yet committed: the writer
#: process pauses just after (or before) that step of the block's own code, and is killed.
KILL_POINTS = {
    "postgres-adbc": "knot_prefect.blocks.warehouses._postgres:publish:after",
    "duckdb": "knot_prefect.blocks.warehouses.duckdb:publish:after",
    "lake-local": "knot_prefect.blocks.warehouses.lake.writes:switch_manifest:before",
    "iceberg-local": "knot_prefect.blocks.warehouses.iceberg.writes:commit:before",
}


@pytest.mark.heavy
@pytest.mark.parametrize("backend", list(KILL_POINTS))
def test_a_writer_killed_mid_write_leaves_the_table_as_it_was(
    make: Callable[[str], Warehouse], backend: str, tmp_path: Path
) -> None:
    """``kill -9`` of a writer inside its append, replace and upsert (one process each)."""
    modes = ["append", "replace", "upsert"]
    warehouses = {mode: make(backend) for mode in modes}
    if backend == "duckdb":  # a DuckDB file has one writer at a time: a file per mode
        warehouses = {mode: warehouses[mode].model_copy(
            update={"path": str(tmp_path / f"{mode}.duckdb")}) for mode in modes}
    before = {}
    for mode, warehouse in warehouses.items():
        warehouse.write(frame(100, first_id=1_000), f"victim_{mode}")
        before[mode] = rows(warehouse, f"victim_{mode}")
    writers = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "tests.warehouses._writer",
             json.dumps(block_spec(warehouses[mode])), mode, f"victim_{mode}", "500",
             KILL_POINTS[backend]],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for mode in modes
    }
    try:
        for mode, writer in writers.items():
            assert writer.stdout is not None and writer.stderr is not None
            if writer.stdout.readline().strip() != "paused":
                pytest.fail(f"the {mode} writer did not pause: {writer.stderr.read()[-3000:]}")
    finally:
        for writer in writers.values():
            writer.kill()
            writer.wait(timeout=30)
    for mode, warehouse in warehouses.items():
        assert rows(warehouse, f"victim_{mode}") == before[mode], mode
        # the table is usable afterwards: the same write now succeeds
        keys = ["id"] if mode == "upsert" else None
        warehouse.write(frame(10), f"victim_{mode}", mode=mode, keys=keys)  # type: ignore[arg-type]
        expected = 10 if mode == "replace" else 110
        assert len(rows(warehouse, f"victim_{mode}")) == expected, mode
    if backend.startswith("postgres"):  # no stage or staging table is left behind
        leftovers = warehouses["append"].read(
            "select table_name from information_schema.tables where table_name like '\\_knot%'"
        )
        assert leftovers.empty, leftovers


@pytest.mark.parametrize("backend", ["postgres-adbc", "postgres-sqlalchemy"])
def test_the_first_write_after_the_server_ended_the_sessions_succeeds(
    warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    """The server ends every session, as a restart does: the pooled connection is dead.

    The next write finds out before it starts, opens a new connection and succeeds.
    """
    import psycopg

    warehouse.write(scores([1]), "scores")
    dsn = request.getfixturevalue("postgres_database")["dsn"]
    with psycopg.connect(dsn, autocommit=True) as admin:
        ended = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = "
            "current_database() and pid <> pg_backend_pid()"
        ).fetchall()
    assert ended, "the pooled connection was not found"
    warehouse.write(scores([2]), "scores")
    assert [r["id"] for r in rows(warehouse, "scores")] == [1, 2]
