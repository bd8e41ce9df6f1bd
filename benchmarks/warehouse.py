"""Warehouse benchmark: knot's reads and writes against the raw fast paths, side by side.

Starts its own PostgreSQL, builds one frame of 1M rows x 10 mixed-type columns and
measures, in one run on the same machine:

- append to PostgreSQL vs ADBC ``adbc_ingest`` (binary COPY) and vs ``pandas.to_sql``;
- upsert 1M rows into a 1M-row table (half the keys match) vs the raw bulk append, into
  a table knot created by upsert (a unique key on the upsert key) and into one without;
- 8 concurrent upserters of 100k rows each (overlapping keys) vs one writer upserting
  the same 8 frames in turn, checking 0 duplicates and 0 lost keys;
- reads vs ADBC ``fetch_arrow_table`` and vs ``pandas.read_sql``;
- ``read_batches`` over a 10M-row table: peak RSS of a process that streams it;
- DuckDB write and read vs raw DuckDB Arrow calls.

Prints medians, ratios and targets, and writes the table into docs/performance.md
(section "Warehouses").

Usage:
    .venv/bin/python benchmarks/warehouse.py            # full run (about 5 minutes)
    .venv/bin/python benchmarks/warehouse.py --quick    # 100k rows, 1M for read_batches
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from tests.services import start_postgres  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- warehouses:start -->", "<!-- warehouses:end -->"


def make_frame(rows: int, first_id: int = 0) -> pa.Table:
    """``rows`` x 10 columns: ints, floats, bool, strings, tz timestamp, decimal, date."""
    rng = np.random.default_rng(first_id)
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    cents = rng.integers(0, 10_000_000, rows)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    return pa.table(
        {
            "id": ids,
            "customer_id": rng.integers(0, 50_000, rows).astype(np.int32),
            "amount": rng.normal(100, 30, rows),
            "score": rng.random(rows),
            "is_active": rng.random(rows) < 0.7,
            "country": pa.array(rng.choice(["FR", "DE", "US", "JP", "BR"], rows)),
            "label": pc.binary_join_element_wise(
                "customer-", pc.cast(pa.array(ids), pa.string()), ""
            ),
            "created_at": pa.array(
                start + rng.integers(0, 10**13, rows).astype("timedelta64[us]"),
                pa.timestamp("us", "UTC"),
            ),
            "price": pa.array(cents, pa.int64())
            .cast(pa.decimal128(19, 0))
            .cast(pa.decimal128(14, 2)),
            "day": pa.array(
                np.datetime64("2024-01-01") + rng.integers(0, 365, rows).astype("timedelta64[D]"),
                pa.date32(),
            ),
        }
    )


@dataclass
class Row:
    what: str
    knot: float
    baseline_name: str
    baseline: float
    target: str
    passed: bool | None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.baseline / self.knot if self.knot else float("inf")


def median_time(
    run: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired(
    first: Callable[[], object],
    second: Callable[[], object],
    repeat: int,
    setup_first: Callable[[], object] | None = None,
    setup_second: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Medians of two operations run alternately, so load on the machine hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        a.append(median_time(first, 1, setup_first))
        b.append(median_time(second, 1, setup_second))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows; 1M for read_batches")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of fast steps")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    parser.add_argument("--upsert-only", action="store_true",
                        help="only the upsert into a table with a unique key (no doc update)")
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    big_rows = 1_000_000 if args.quick else 10_000_000
    to_sql_rows = rows
    repeat = args.repeat

    import adbc_driver_postgresql.dbapi as pgdb
    import duckdb
    import pandas as pd
    import sqlalchemy as sa

    from knot_prefect import DuckDBWarehouse, SqlWarehouse

    data = make_frame(rows)
    upsert_data = make_frame(rows, first_id=rows // 2)
    results: list[Row] = []
    print(f"frame: {rows:,} rows x {data.num_columns} columns, {data.nbytes / 1e6:.0f} MB in Arrow")

    with start_postgres() as pg:
        pg.create_database("bench")
        dsn, url = pg.dsn("bench"), pg.sqlalchemy_url("bench")
        warehouse = SqlWarehouse(url=url)
        raw = pgdb.connect(dsn)
        cursor = raw.cursor()

        def reset(table: str, content: pa.Table | None = None) -> None:
            cursor.execute(f"drop table if exists {table}")
            raw.commit()
            warehouse.write(content if content is not None else data.slice(0, 1), table)
            if content is None:
                cursor.execute(f"truncate {table}")
            raw.commit()

        # -- append -----------------------------------------------------------------------
        def raw_append() -> None:
            cursor.adbc_ingest("raw_append", data, mode="append")
            raw.commit()

        if not args.upsert_only:
            t_knot, t_raw = paired(
                lambda: warehouse.write(data, "knot_append"),
                raw_append,
                repeat,
                lambda: reset("knot_append"),
                lambda: reset("raw_append"),
            )
            print(f"append: knot {t_knot:.2f}s, adbc_ingest {t_raw:.2f}s")
            results.append(
                Row(
                    "PostgreSQL append (existing table)",
                    t_knot,
                    "ADBC adbc_ingest",
                    t_raw,
                    ">= 0.8x",
                    t_raw / t_knot >= 0.8,
                )
            )
            cursor.execute("drop table if exists knot_new")
            raw.commit()

            def raw_create() -> None:
                cursor.adbc_ingest("raw_new", data, mode="create")
                raw.commit()

            def drop_pg(table: str) -> None:
                cursor.execute(f"drop table if exists {table}")
                raw.commit()

            t_new, t_raw_new = paired(
                lambda: warehouse.write(data, "knot_new"),
                raw_create,
                repeat,
                lambda: drop_pg("knot_new"),
                lambda: drop_pg("raw_new"),
            )
            results.append(
                Row(
                    "PostgreSQL append (new table)",
                    t_new,
                    "ADBC adbc_ingest (mode=create)",
                    t_raw_new,
                    ">= 0.8x",
                    t_raw_new / t_new >= 0.8,
                )
            )

            frame = data.to_pandas()
            engine = sa.create_engine(url)
            started = time.perf_counter()
            frame.iloc[:to_sql_rows].to_sql(
                "pandas_append", engine, index=False, if_exists="replace", chunksize=10_000
            )
            t_to_sql = (time.perf_counter() - started) * rows / to_sql_rows
            print(f"pandas.to_sql: {t_to_sql:.1f}s")
            results.append(
                Row(
                    "PostgreSQL append",
                    t_knot,
                    "pandas.DataFrame.to_sql",
                    t_to_sql,
                    ">= 10x",
                    t_to_sql / t_knot >= 10,
                    "to_sql run once",
                )
            )

        # -- upsert -----------------------------------------------------------------------
        def reset_upsert(table: str, unique_key: bool) -> None:
            cursor.execute(f"drop table if exists {table}")
            raw.commit()
            if unique_key:  # a table knot created with mode="upsert": a unique key on id
                warehouse.write(data, table, mode="upsert", keys=["id"])
            else:  # a table without a unique key (created by an append)
                warehouse.write(data, table)

        for unique_key, what, target_ratio in [
            (True, "table knot created by upsert (unique key on id)", 0.6),
            (False, "table without a unique key", 0.4),
        ]:
            if args.upsert_only and not unique_key:
                continue
            t_upsert, t_raw_up = paired(
                lambda: warehouse.write(upsert_data, "knot_upsert", mode="upsert", keys=["id"]),
                raw_append,
                repeat,
                lambda unique_key=unique_key: reset_upsert("knot_upsert", unique_key),
                lambda: reset("raw_append"),
            )
            count = warehouse.read_arrow(
                "select count(*) as n, count(distinct id) as k from knot_upsert"
            ).to_pylist()[0]
            assert count == {"n": rows + rows // 2, "k": rows + rows // 2}, count
            print(f"upsert ({what}): knot {t_upsert:.2f}s, adbc_ingest append {t_raw_up:.2f}s")
            results.append(
                Row(
                    f"PostgreSQL upsert {rows:,} into {rows:,} rows, {what}",
                    t_upsert,
                    "ADBC adbc_ingest (append)",
                    t_raw_up,
                    f">= {target_ratio}x",
                    t_raw_up / t_upsert >= target_ratio,
                    "half the keys match",
                )
            )

        if args.upsert_only:
            row = results[-1]
            print(f"ratio {row.ratio:.2f}x (target {row.target}); load: {os.getloadavg()}")
            return

        # -- concurrent upserts -----------------------------------------------------------
        writers, per_writer = 8, rows // 10
        frames = [make_frame(per_writer, first_id=i * per_writer // 2) for i in range(writers)]
        distinct = (writers - 1) * per_writer // 2 + per_writer

        def reset_concurrent() -> None:
            cursor.execute("drop table if exists knot_concurrent")
            raw.commit()
            warehouse.write(frames[0].slice(0, 1), "knot_concurrent", mode="upsert", keys=["id"])
            cursor.execute("truncate knot_concurrent")
            raw.commit()

        def one_writer() -> None:
            for frame_i in frames:
                warehouse.write(frame_i, "knot_concurrent", mode="upsert", keys=["id"])

        def concurrent_writers() -> float:
            return run_concurrent_upserters(url, writers, per_writer)

        t_one, t_many = [], []
        for _ in range(max(1, repeat // 2)):
            reset_concurrent()
            t_one.append(median_time(one_writer, 1))
            reset_concurrent()
            t_many.append(concurrent_writers())
            count = warehouse.read_arrow(
                "select count(*) as n, count(distinct id) as k from knot_concurrent"
            ).to_pylist()[0]
            assert count == {"n": distinct, "k": distinct}, count
        t_single, t_parallel = statistics.median(t_one), statistics.median(t_many)
        print(f"{writers} concurrent upserters: {t_parallel:.2f}s; one writer {t_single:.2f}s")
        results.append(
            Row(
                f"PostgreSQL: {writers} concurrent upserters of {per_writer:,} rows "
                "(overlapping keys; 0 duplicates, 0 lost)",
                t_parallel,
                f"one writer upserting the same {writers} frames in turn",
                t_single,
                ">= 0.7x",
                t_single / t_parallel >= 0.7,
                "ratio of total rows/s",
            )
        )

        # -- reads ------------------------------------------------------------------------
        def raw_read() -> pa.Table:
            cursor.execute("select * from knot_append")
            return cursor.fetch_arrow_table()

        t_knot_read, t_raw_read = paired(
            lambda: warehouse.read_arrow("select * from knot_append"), raw_read, repeat
        )
        t_knot_pandas = median_time(lambda: warehouse.read("select * from knot_append"), repeat)
        started = time.perf_counter()
        pd.read_sql("select * from knot_append", engine)
        t_read_sql = time.perf_counter() - started
        print(f"read: knot {t_knot_read:.2f}s, adbc {t_raw_read:.2f}s, read_sql {t_read_sql:.1f}s")
        results.append(
            Row(
                "PostgreSQL read_arrow",
                t_knot_read,
                "ADBC fetch_arrow_table",
                t_raw_read,
                ">= 0.8x",
                t_raw_read / t_knot_read >= 0.8,
            )
        )
        results.append(
            Row(
                "PostgreSQL read (pandas)",
                t_knot_pandas,
                "pandas.read_sql",
                t_read_sql,
                ">= 5x",
                t_read_sql / t_knot_pandas >= 5,
                "read_sql run once",
            )
        )
        raw.close()
        engine.dispose()

        # -- read_batches over a big table, in a separate process -------------------------
        warehouse.execute(
            "create table big as select g::bigint as id, (g % 50000)::int as customer_id, "
            "random() * 100 as amount, random() as score, g % 3 = 0 as is_active, "
            "(array['FR','DE','US','JP','BR'])[1 + g % 5] as country, 'customer-' || g as label, "
            "timestamptz '2024-01-01' + g * interval '1 second' as created_at, "
            "(g % 100000)::numeric(14, 2) / 100 as price, date '2024-01-01' + (g % 365) as day "
            f"from generate_series(1, {big_rows}) g"
        )
        child = subprocess.run(
            [sys.executable, "-c", STREAM_CHILD, url],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        streamed = json.loads(child.stdout.strip().splitlines()[-1])
        assert streamed["rows"] == big_rows, streamed
        print(
            f"read_batches {big_rows:,} rows: peak RSS {streamed['peak_mb']:.0f} MB, "
            f"{streamed['seconds']:.1f}s"
        )
        results.append(
            Row(
                f"read_batches over {big_rows:,} rows: peak RSS (MB)",
                streamed["peak_mb"],
                "limit",
                1024,
                "< 1024 MB",
                streamed["peak_mb"] < 1024,
                f"{streamed['seconds']:.1f}s to stream",
            )
        )

    # -- DuckDB -------------------------------------------------------------------------------
    # DuckDB steps take about a second: more pairs keep the medians steady on a busy machine.
    duck_repeat = 3 * repeat
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.duckdb")
        duck = DuckDBWarehouse(path=path)

        def drop(table: str) -> None:
            with duckdb.connect(path) as con:
                con.sql(f"drop table if exists {table}")

        def raw_write() -> None:
            with duckdb.connect(path) as con:
                con.register("frame", data)
                con.sql("create table raw_write as select * from frame")

        t_knot_w, t_raw_w = paired(
            lambda: duck.write(data, "knot_write"),
            raw_write,
            duck_repeat,
            lambda: drop("knot_write"),
            lambda: drop("raw_write"),
        )

        def raw_read_duck() -> pa.Table:
            with duckdb.connect(path) as con:
                return con.sql("select * from raw_write").to_arrow_table()

        t_knot_r, t_raw_r = paired(
            lambda: duck.read_arrow("select * from knot_write"), raw_read_duck, duck_repeat
        )
        with duckdb.connect(path) as open_con:
            t_warm_r = median_time(
                lambda: open_con.sql("select * from raw_write").to_arrow_table(), duck_repeat
            )
        print(
            f"duckdb write: knot {t_knot_w:.2f}s raw {t_raw_w:.2f}s; "
            f"read: knot {t_knot_r:.2f}s raw {t_raw_r:.2f}s"
        )
        results.append(
            Row(
                "DuckDB write (new table)",
                t_knot_w,
                "duckdb register + CREATE TABLE AS",
                t_raw_w,
                ">= 0.9x",
                t_raw_w / t_knot_w >= 0.9,
            )
        )
        results.append(
            Row(
                "DuckDB read_arrow",
                t_knot_r,
                "duckdb connect + sql().to_arrow_table() + close",
                t_raw_r,
                ">= 0.9x",
                t_raw_r / t_knot_r >= 0.9,
            )
        )
        results.append(
            Row(
                "DuckDB read_arrow",
                t_knot_r,
                "duckdb sql().to_arrow_table() on a connection kept open",
                t_warm_r,
                "(for reference)",
                None,
                "knot opens the file per call so other processes can use it",
            )
        )

    table = render(results, rows, big_rows)
    print()
    print(table)
    if not args.no_doc:
        write_doc(table)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


UPSERT_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[4])
from benchmarks.warehouse import make_frame
from knot_prefect import SqlWarehouse
warehouse = SqlWarehouse(url=sys.argv[1])
data = make_frame(int(sys.argv[3]), first_id=int(sys.argv[2]))
warehouse.table_exists("knot_concurrent")  # connected before the start signal
print("ready", flush=True)
sys.stdin.readline()
started = time.time()
warehouse.write(data, "knot_concurrent", mode="upsert", keys=["id"])
print(started, time.time(), flush=True)
"""


def run_concurrent_upserters(url: str, writers: int, per_writer: int) -> float:
    """Seconds from the first writer's start to the last one's end (all start together)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", UPSERT_CHILD, url, str(i * per_writer // 2),
             str(per_writer), str(ROOT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for i in range(writers)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    spans = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, "a concurrent upserter failed"
        spans.append([float(x) for x in out.split()])
    return max(end for _, end in spans) - min(start for start, _ in spans)


STREAM_CHILD = r"""
import json, re, sys, time
from knot_prefect import SqlWarehouse
warehouse = SqlWarehouse(url=sys.argv[1])
started = time.perf_counter()
rows = 0
for batch in warehouse.read_batches("select * from big", batch_rows=100_000):
    rows += batch.num_rows
# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork).
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
print(json.dumps({"rows": rows, "peak_mb": peak, "seconds": time.perf_counter() - started}))
"""


def render(results: list[Row], rows: int, big_rows: int) -> str:
    lines = [
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores "
        f"({platform.machine()}, Python {platform.python_version()}), PostgreSQL 15 started "
        f"by the benchmark, {rows:,} rows x 10 columns (int64, int32, 2 float64, bool, "
        "2 strings, timestamptz, decimal(14,2), date); medians of the repeated runs. "
        "Ratio = baseline time / knot time (higher is better for knot); each knot step and "
        "its baseline run alternately, so both see the same load. Load average when the "
        f"table was printed: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| operation | knot | baseline | baseline time | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.baseline_name == "limit":
            lines.append(
                f"| {r.what} | {r.knot:.0f} MB | — | — | — | {r.target} | "
                f"{'yes' if r.passed else 'NO'} ({r.note}) |"
            )
            continue
        note = f" ({r.note})" if r.note else ""
        met = "—" if r.passed is None else ("yes" if r.passed else "NO")
        lines.append(
            f"| {r.what} | {r.knot:.2f} s | {r.baseline_name}{note} | {r.baseline:.2f} s | "
            f"{r.ratio:.2f}x | {r.target} | {met} |"
        )
    return "\n".join(lines)


def write_doc(table: str) -> None:
    section = (
        f"{START}\n## Warehouses\n\nCommand: `.venv/bin/python benchmarks/warehouse.py`.\n\n"
        f"{table}\n{END}"
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if START in text and END in text:
        text = re.sub(
            re.escape(START) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
