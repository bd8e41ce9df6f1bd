"""DeltaLake against delta-rs called directly, and Dask scoring on Delta against ParquetLake.

Run: ``.venv/bin/python benchmarks/lake_formats.py [--rows N] [--runs N] [--stream-rows N ...]``
(``--parts direct dask stream``: the parts to run, all by default; the page is updated
only by a run of all three).

One run, on this machine, measures side by side (medians of ``--runs``, one untimed
warm-up each; the ratio is baseline time / knot time, higher is better for knot):

1. Write ``--rows`` x 10 mixed columns (the frame of ``benchmarks/parquet_lake.py``) as
   a new table version: ``DeltaLake.write(mode="replace")`` against
   ``deltalake.write_deltalake(mode="overwrite")`` on a local folder. Target >= 0.9x.
2. Upsert ``--rows`` rows (half matching, half new) into a table of ``--rows`` rows:
   ``DeltaLake.write(mode="upsert")`` against a direct delta-rs ``merge`` with
   ``when_matched_update_all().when_not_matched_insert_all()``; the table is rewritten
   to the same ``--rows`` rows before every call, untimed. Target >= 0.9x.
3. ``batch_inference_flow`` next to the data on 2 Dask workers (each reads its key
   ranges from the lake and stages its scores; the flow commits once) on a DeltaLake
   against a ParquetLake holding the same ``--scoring-rows`` rows, interleaved.
   Target: Delta no slower than Parquet.
4. Peak RSS (``VmHWM``) of the flow process scoring from and to the DeltaLake with
   ``stream=True`` as the input grows (``--stream-rows``), each size in a fresh
   process. Target: flat.

Prints the tables and writes them into docs/performance.md ("Lake formats").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import median_time, prepare, print_child_result, run_child, write_performance_section
from parquet_lake import frame
from scoring import (
    MODEL,
    SCORING_SQL,
    START_ENVIRONMENT,
    generate_rows,
    local_cluster,
    setup_blocks,
)

prepare()

DELTA_BLOCK, PARQUET_BLOCK = "bench-delta", "bench-parquet"
PARTS = ("direct", "dask", "stream")


# -- parts 1 and 2: knot against delta-rs ------------------------------------------------------
def write_and_upsert(rows: int, runs: int, folder: Path) -> list[tuple[str, float, str, float]]:
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    from knot_prefect import DeltaLake

    data = frame(rows)
    lake = DeltaLake(path=str(folder / "knot"))
    direct = str(folder / "direct" / "bench")
    results = []

    knot = median_time(lambda: lake.write(data, "bench", mode="replace"), runs, warm_up=True)
    base = median_time(lambda: write_deltalake(direct, data, mode="overwrite"), runs,
                       warm_up=True)
    results.append((f"write {rows:,} rows (new version)", knot,
                    "`deltalake.write_deltalake`", base))

    # Ids shifted by half the table: half the rows match, half are new.
    update = data.set_column(0, "id", pc.add(data.column("id"), rows // 2))

    def knot_upsert() -> None:
        lake.write(update, "bench", mode="upsert", keys=["id"])

    def direct_merge() -> None:
        (DeltaTable(direct).merge(update, "t.id = s.id", source_alias="s", target_alias="t")
         .when_matched_update_all().when_not_matched_insert_all().execute())

    def timed(upsert: Callable[[], None], reset: Callable[[], object]) -> float:
        times = []
        for run in range(runs + 1):  # the first is the warm-up
            reset()
            started = time.perf_counter()
            upsert()
            if run:
                times.append(time.perf_counter() - started)
        return statistics.median(times)

    knot = timed(knot_upsert, lambda: lake.write(data, "bench", mode="replace"))
    base = timed(direct_merge, lambda: write_deltalake(direct, data, mode="overwrite"))
    assert lake.read("select count(*) as n from bench")["n"].iloc[0] == rows + rows // 2
    results.append((f"upsert {rows:,} rows into {rows:,} (MERGE)", knot,
                    "delta-rs `merge` called directly", base))
    return results


# -- part 3: Dask scoring next to the data, Delta against Parquet --------------------------------
def save_lakes(home: Path) -> None:
    from knot_prefect import DeltaLake
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    DeltaLake(path=str(home / "delta"), threads=1).save(DELTA_BLOCK, overwrite=True)
    ParquetLake(path=str(home / "parquet"), rows_per_file=1_000_000, threads=1).save(
        PARQUET_BLOCK, overwrite=True)


def load_lake(block: str) -> Any:
    from knot_prefect.blocks.resolve import resolve_block
    from knot_prefect.blocks.warehouses.base import Warehouse

    return resolve_block(block, Warehouse)


def dask_scoring(rows: int, runs: int) -> dict[str, float]:
    from knot_prefect.flows import batch_inference_flow

    lakes = {block: load_lake(block) for block in (DELTA_BLOCK, PARQUET_BLOCK)}
    for lake in lakes.values():
        generate_rows(lake, rows)
    cluster = local_cluster()

    def score(block: str) -> float:
        lakes[block].drop_table("scores", missing_ok=True)
        started = time.perf_counter()
        state = batch_inference_flow(
            warehouse=block, tracking="bench-mlflow", contract=None, entity_sql=SCORING_SQL,
            feature_source="warehouse", model_name=MODEL, output_table="scores",
            batch_rows=250_000, dask_address=cluster.scheduler_address, return_state=True)
        seconds = time.perf_counter() - started
        assert state.is_completed(), state
        return seconds

    try:
        samples: dict[str, list[float]] = {DELTA_BLOCK: [], PARQUET_BLOCK: []}
        for block in samples:  # warm-up: first flow and task runs on the workers
            score(block)
        for _ in range(runs):  # interleaved, so that drifting load touches both alike
            for block, times in samples.items():
                times.append(score(block))
        for block, times in samples.items():
            print(f"  {block}: " + ", ".join(f"{seconds:.1f} s" for seconds in times), flush=True)
        for block, lake in lakes.items():
            scored = lake.read("select count(*) as n from scores")["n"].iloc[0]
            assert scored == rows, f"{block} published {scored} rows of {rows}"
    finally:
        cluster.close()
    return {block: statistics.median(times) for block, times in samples.items()}


# -- part 4: flow-process peak memory, streamed --------------------------------------------------
def stream_child(rows: int) -> None:
    """In a fresh process: stream-score the Delta lake's rows; print the peak RSS as JSON."""
    from knot_prefect.flows import batch_inference_flow

    lake = load_lake(DELTA_BLOCK)
    lake.drop_table("scores_streamed", missing_ok=True)
    started = time.perf_counter()
    batch_inference_flow(
        warehouse=DELTA_BLOCK, tracking="bench-mlflow", contract=None, entity_sql=SCORING_SQL,
        feature_source="warehouse", model_name=MODEL, output_table="scores_streamed",
        batch_rows=500_000, stream=True)
    seconds = time.perf_counter() - started
    published = lake.read("select count(*) as n from scores_streamed")["n"].iloc[0]
    print_child_result(rows=rows, published=int(published), seconds=seconds)


def streaming(sizes: list[int]) -> list[dict[str, Any]]:
    lake = load_lake(DELTA_BLOCK)
    measured = []
    for rows in sizes:
        generate_rows(lake, rows)
        result = run_child(__file__, "--child", str(rows), environment=START_ENVIRONMENT)
        assert result["published"] == rows, result
        measured.append(result)
        print(f"  streamed {rows:>11,} rows: peak RSS {result['peak_rss_mb']:6.0f} MB, "
              f"{result['seconds']:6.1f} s", flush=True)
    return measured


# -- report ------------------------------------------------------------------------------------
def report(args: argparse.Namespace, direct: list[tuple[str, float, str, float]],
           scoring: dict[str, float] | None, stream: list[dict[str, Any]],
           load: tuple[float, float]) -> str:
    lines = [
        f"`.venv/bin/python benchmarks/lake_formats.py --rows {args.rows} --scoring-rows "
        f"{args.scoring_rows} --stream-rows {' '.join(map(str, args.stream_rows))} --parts "
        f"{' '.join(args.parts)}`, local folder, median of {args.runs} runs after a warm-up, "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} at the start and {load[1]:.1f} "
        "at the end. Ratio: baseline time / knot time (higher is better for knot).",
    ]
    if direct or scoring:
        lines += ["", "| operation | DeltaLake | baseline | baseline time | ratio | target |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {knot:.2f} s | {baseline} | {base:.2f} s | {base / knot:.2f}x | "
                  f">= 0.9x |" for name, knot, baseline, base in direct]
    if scoring:
        delta, parquet = scoring[DELTA_BLOCK], scoring[PARQUET_BLOCK]
        lines.append(
            f"| `batch_inference_flow` on 2 Dask workers, {args.scoring_rows:,} rows read from "
            f"and written to the lake | {delta:.1f} s | the same flow on a ParquetLake | "
            f"{parquet:.1f} s | {parquet / delta:.2f}x | >= 1.0x |")
    if stream:
        lines += [
            "",
            "Flow-process peak RSS, `stream=True` from and to the DeltaLake (batches of "
            "500,000 rows, scores staged and committed in one transaction), each size in a "
            "fresh process:",
            "",
            "| input rows | peak RSS | wall time |",
            "|---|---|---|",
            *[f"| {r['rows']:,} | {r['peak_rss_mb']:.0f} MB | {r['seconds']:.1f} s |"
              for r in stream],
        ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    from tests.services import start_prefect_server

    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="knot-bench-lake-formats-"))
    os.environ["KNOT_HOME"] = str(home)
    direct: list[tuple[str, float, str, float]] = []
    scoring: dict[str, float] | None = None
    stream: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            os.environ["PREFECT_API_URL"] = stack.enter_context(start_prefect_server())
        if "direct" in args.parts:
            print(f"knot DeltaLake against delta-rs, {args.rows:,} rows ...", flush=True)
            direct = write_and_upsert(args.rows, args.runs, home / "direct")
            for name, knot, _, base in direct:
                print(f"  {name}: knot {knot:.2f} s, delta-rs {base:.2f} s", flush=True)
        setup_blocks(home)
        save_lakes(home)
        if "dask" in args.parts:
            print(f"Dask scoring, {args.scoring_rows:,} rows ...", flush=True)
            scoring = dask_scoring(args.scoring_rows, args.runs)
            print(f"  Delta {scoring[DELTA_BLOCK]:.1f} s, Parquet {scoring[PARQUET_BLOCK]:.1f} s",
                  flush=True)
        if "stream" in args.parts:
            print("Streaming ...", flush=True)
            stream = streaming(args.stream_rows)
    text = report(args, direct, scoring, stream, (load_at_start, os.getloadavg()[0]))
    print()
    print(text)
    if not args.quick and set(args.parts) == set(PARTS):
        write_performance_section("lake-formats", "Lake formats", text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scoring-rows", type=int, default=1_000_000)
    parser.add_argument("--stream-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="small sizes, no doc update")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.scoring_rows, args.stream_rows, args.runs = 50_000, 50_000, [50_000], 1
    return args


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.child:
        stream_child(ARGS.child)
    else:
        main(ARGS)
