"""Spark scoring benchmark: ``batch_inference_flow`` on Spark local[2] vs one process vs Dask.

One run, on this machine, scores the same lake tables (1M and 10M rows by default,
``--rows``; generated once per run and read by every side) with the same model (the
churn benchmark's scikit-learn pipeline, as an MLflow pyfunc) three ways, each in a
fresh flow process of its own, side by side:

- one process: the flow process reads each key range from the ParquetLake, scores it
  and stages it, then commits once (the default path for warehouse columns);
- Dask: 2 worker processes of one thread (a LocalCluster started before the timed run),
  each reading, scoring and staging its own ranges;
- Spark ``local[2]``: a SparkSession started before the timed run; Spark reads the
  lake table's Parquet files, applies the model with ``mlflow.pyfunc.spark_udf`` and
  each task stages its rows; the flow commits once.

Each flow process first scores a small table, untimed (the first run's imports and
model loads in the flow process, the Dask workers and Spark's Python workers: reported
as "first run"), then each size once. Every variant publishes every row with the
lineage columns (checked). Reported: the wall time of the flow call, the ratio to one
process, the time to start the engine and the first run (not in the flow's time), and
the flow process's peak resident memory during each size's flow call (``VmHWM`` reset
before it and read as it returns, before the benchmark counts the published rows: the
Spark JVM and the Dask workers are processes of their own). Every process is
limited to one BLAS thread, as in the Dask benchmark, and imports from compiled
bytecode kept for the run (``PYTHONPYCACHEPREFIX``), as the test suite does.

Usage:
    .venv/bin/python benchmarks/spark_scoring.py               # 1M and 10M rows, doc update
    .venv/bin/python benchmarks/spark_scoring.py --rows 1000000  # quicker, printed only
    .venv/bin/python benchmarks/spark_scoring.py --rows 1000000 5000000 --write-doc
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import peak_rss_kb, print_child_result, run_child, write_performance_section
from scoring import MODEL, START_ENVIRONMENT, generate_rows, setup_blocks

ENGINES = ("one process", "dask 2 workers", "spark local[2]")
FULL_ROWS = [1_000_000, 10_000_000]
WARM_UP_ROWS = 20_000


def table_of(rows: int) -> str:
    return f"rows_to_score_{rows}"


def reset_peak_rss() -> None:
    """Start this process's ``VmHWM`` again from its current resident memory (Linux)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def child(engine: str, sizes: list[int], batch_rows: int) -> None:
    """In a fresh process: start the engine, score a small table untimed, then each size."""
    from knot_prefect.blocks.spark_engine import SparkEngine
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.flows import batch_inference_flow

    lake = ParquetLake.load("bench-lake")
    options: dict[str, Any] = {}
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if engine.startswith("dask"):
            from dask.distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))
            options["dask_address"] = cluster.scheduler_address
        elif engine.startswith("spark"):
            spark = SparkEngine(master="local[2]", conf={
                "spark.ui.enabled": "false",
                "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows)})
            spark.save("bench-spark", overwrite=True)
            stack.callback(spark.start().stop)
            options["spark"] = "bench-spark"
        engine_start = time.perf_counter() - started

        def score(rows: int) -> tuple[float, float]:
            lake.drop_table("scores", missing_ok=True)
            reset_peak_rss()
            started = time.perf_counter()
            summary = batch_inference_flow(
                warehouse="bench-lake", tracking="bench-mlflow", contract=None,
                entity_sql=table_of(rows), key_columns=["customer_id"],
                feature_source="warehouse", model_name=MODEL, output_table="scores",
                batch_rows=batch_rows, **options)
            seconds = time.perf_counter() - started
            # The flow's peak, read before the check below (DuckDB counting distinct
            # keys holds them all).
            peak_mb = peak_rss_kb() / 1024
            published = lake.read(
                "select count(*) as n, count(distinct customer_id) as keys, "
                "count(model_version) as lineage from scores").iloc[0]
            counts = {int(published[k]) for k in ("n", "keys", "lineage")}
            assert counts == {rows} == {summary["rows_published"]}, (rows, published)
            return seconds, peak_mb

        first_run = score(WARM_UP_ROWS)[0]
        runs = []
        for rows in sizes:
            seconds, peak_mb = score(rows)
            runs.append({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_mb})
    print_child_result(engine=engine, engine_start=engine_start, first_run=first_run,
                       runs=runs)


def run_engine(engine: str, sizes: list[int], batch_rows: int,
               environment: dict[str, str]) -> dict[str, Any]:
    result = run_child(__file__, "--child", engine, "--batch-rows", str(batch_rows),
                       "--rows", *map(str, sizes),
                       environment={**START_ENVIRONMENT, **environment})
    print(f"  {engine:<16} engine start {result['engine_start']:5.1f} s, first run "
          f"({WARM_UP_ROWS:,} rows) {result['first_run']:5.1f} s", flush=True)
    for run in result["runs"]:
        print(f"    {run['rows']:>11,} rows {run['seconds']:7.1f} s  (flow process peak "
              f"{run['peak_rss_mb']:6.0f} MB)", flush=True)
    return result


def report(sizes: list[int], results: list[dict[str, Any]],
           load: tuple[float, float]) -> str:
    command = ".venv/bin/python benchmarks/spark_scoring.py"
    if sizes != FULL_ROWS:
        command += f" --rows {' '.join(map(str, sizes))} --write-doc"
    lines = [
        f"`batch_inference_flow` scoring {' and '.join(f'{n:,}' for n in sizes)} rows of "
        f"a local ParquetLake table (5 features, scikit-learn churn pipeline), measured "
        f"{time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} at start and {load[1]:.1f} at the end. Command: `{command}`. "
        f"Each engine in a flow process of its own, which first scores {WARM_UP_ROWS:,} "
        "rows untimed (\"first run\": imports and model loads in every process of the "
        "engine), then each size once.",
        "",
        "| engine | rows | flow wall time | vs one process | rows/s | flow process peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for index, rows in enumerate(sizes):
        base = results[0]["runs"][index]["seconds"]
        for result in results:
            run = result["runs"][index]
            lines.append(
                f"| {result['engine']} | {rows:,} | {run['seconds']:.1f} s | "
                f"{base / run['seconds']:.2f}x | {rows / run['seconds'] / 1e3:,.0f}k | "
                f"{run['peak_rss_mb']:.0f} MB |")
    lines += [
        "",
        "| engine | engine start | first run |",
        "|---|---|---|",
        *[f"| {r['engine']} | {r['engine_start']:.1f} s | {r['first_run']:.1f} s |"
          for r in results],
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    from tests.services import start_prefect_server

    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="knot-bench-spark-"))
    os.environ["KNOT_HOME"] = str(home)
    # The flow processes, Dask workers and Spark's Python workers import from bytecode
    # compiled once for the run, not from source each time.
    environment = {"PYTHONPYCACHEPREFIX": str(home / "pycache")}
    START_ENVIRONMENT.pop("PYTHONDONTWRITEBYTECODE", None)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            os.environ["PREFECT_API_URL"] = stack.enter_context(start_prefect_server())
        setup_blocks(home)
        from knot_prefect.blocks.warehouses.parquet import ParquetLake

        lake = ParquetLake.load("bench-lake")
        for rows in sorted({WARM_UP_ROWS, *args.rows}):
            generate_rows(lake, rows, table_of(rows))
        print(f"Scoring {' and '.join(f'{n:,}' for n in args.rows)} rows ...", flush=True)
        results = [run_engine(engine, args.rows, args.batch_rows, environment)
                   for engine in ENGINES]
    text = report(args.rows, results, (load_at_start, os.getloadavg()[0]))
    print()
    print(text)
    if args.rows == FULL_ROWS or args.write_doc:
        write_performance_section("spark-scoring", "Spark scoring", text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=FULL_ROWS,
                        help="input sizes, scored in this order by every engine")
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--write-doc", action="store_true",
                        help="record a run of other sizes in docs/performance.md")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.child:
        child(ARGS.child, ARGS.rows, ARGS.batch_rows)
    else:
        main(ARGS)
