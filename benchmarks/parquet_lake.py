"""ParquetLake on a local folder against raw pyarrow and DuckDB calls, side by side.

Run: ``.venv/bin/python benchmarks/parquet_lake.py [--rows N] [--runs N]``

The same frame (``--rows`` x 10 mixed columns) is used for every measurement; each
pair alternates knot and baseline ``--runs`` times and prints the medians and the ratio
(baseline time / knot time; higher is better for knot):

- write (replace): ``ParquetLake.write`` against ``pyarrow.parquet.write_table`` with
  the same codec (zstd) to a local file;
- read a table: ``ParquetLake.read_table_arrow`` against ``pyarrow.parquet.read_table``
  of one file with the same rows;
- SQL read: ``ParquetLake.read_arrow("SELECT * ... WHERE ...")`` against DuckDB's
  ``read_parquet`` on the same file with the same filter;
- upsert ``rows/10`` rows (half matching) into the table: reported alone (its baseline
  is the replace write: an upsert rewrites the table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import median_time


def frame(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "small": rng.integers(0, 1000, rows, dtype=np.int32),
            "x": rng.random(rows),
            "y": rng.normal(size=rows),
            "flag": rng.random(rows) > 0.5,
            "city": np.array(["paris", "lyon", "nice", "lille"])[rng.integers(0, 4, rows)],
            "label": pa.array([f"user-{i % 50_000}" for i in range(rows)]),
            "at": pa.array(
                [start + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, rows)],
                pa.timestamp("us", "UTC"),
            ),
            "amount": pa.array(rng.integers(0, 10**8, rows), pa.int64()).cast(
                pa.decimal128(22, 2)
            ),
            "day": pa.array(rng.integers(19_000, 20_000, rows).astype("int32"), pa.date32()),
        }
    )


def median_seconds(run: Callable[[], object], runs: int) -> float:
    """Median of ``runs`` timed calls after one untimed warm-up call."""
    return median_time(run, runs, warm_up=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import duckdb

    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    data = frame(args.rows)
    folder = Path(tempfile.mkdtemp(prefix="knot-lake-bench-"))
    lake = ParquetLake(path=str(folder / "lake"), rows_per_file=args.rows)
    raw = folder / "raw.parquet"
    results: list[tuple[str, float, str, float | None]] = []

    knot = median_seconds(lambda: lake.write(data, "bench", mode="replace"), args.runs)
    base = median_seconds(lambda: pq.write_table(data, raw, compression="zstd"), args.runs)
    results.append(("write (replace)", knot, "pyarrow.parquet.write_table", base))

    knot = median_seconds(lambda: lake.read_table_arrow("bench"), args.runs)
    base = median_seconds(lambda: pq.read_table(raw), args.runs)
    results.append(("read_table_arrow", knot, "pyarrow.parquet.read_table", base))

    query = "SELECT id, x, city FROM bench WHERE small < :limit"
    knot = median_seconds(lambda: lake.read_arrow(query, {"limit": 100}), args.runs)

    def duckdb_raw() -> None:
        with duckdb.connect() as connection:
            connection.sql(
                "SELECT id, x, city FROM read_parquet($path) WHERE small < $limit",
                params={"path": str(raw), "limit": 100},
            ).to_arrow_table()

    base = median_seconds(duckdb_raw, args.runs)
    results.append(("read_arrow (SQL, filter)", knot, "duckdb read_parquet", base))

    # The last tenth of the rows, ids shifted by half of it: half match, half are new.
    update = data.slice(args.rows - args.rows // 10, args.rows // 10)
    update = update.set_column(0, "id", pc.add(update.column("id"), args.rows // 20))
    knot = median_seconds(
        lambda: lake.write(update, "bench", mode="upsert", keys=["id"]), args.runs
    )
    results.append((f"upsert {update.num_rows:,} rows into {args.rows:,}", knot, "—", None))

    print(f"ParquetLake, local folder, {args.rows:,} rows x 10 columns, "
          f"median of {args.runs} runs")
    print("| operation | knot | baseline | baseline time | ratio |")
    print("|---|---|---|---|---|")
    for name, knot_s, baseline, base_s in results:
        if base_s is None:
            print(f"| {name} | {knot_s:.2f} s | {baseline} | — | — |")
        else:
            print(f"| {name} | {knot_s:.2f} s | {baseline} | {base_s:.2f} s | "
                  f"{base_s / knot_s:.2f}x |")


if __name__ == "__main__":
    main()
