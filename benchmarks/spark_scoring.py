"""Spark scoring benchmark: ``batch_inference_flow`` on Spark local[2] vs one process vs Dask.

One run, on this machine, scores the same lake table (10M rows by default, ``--rows``)
with the same model (the churn benchmark's scikit-learn pipeline, as an MLflow pyfunc)
three ways, each in a fresh flow process of its own, side by side:

- one process: the flow process reads each key range from the ParquetLake, scores it
  and stages it, then commits once (the default path for warehouse columns);
- Dask: 2 worker processes of one thread (a LocalCluster started before the timed run),
  each reading, scoring and staging its own ranges;
- Spark ``local[2]``: a SparkSession started before the timed run; Spark reads the
  lake table's Parquet files, applies the model with ``mlflow.pyfunc.spark_udf`` and
  each task stages its rows; the flow commits once.

Every variant publishes every row with the lineage columns (checked). Reported: the
median wall time of the flow call, the ratio to one process, the time to start the
engine (not in the flow's time), and the flow process's peak resident memory
(``VmHWM`` of the Python process: the Spark JVM and the Dask workers are processes of
their own). Every process is limited to one BLAS thread, as in the Dask benchmark.

Usage:
    .venv/bin/python benchmarks/spark_scoring.py               # 10M rows, doc update
    .venv/bin/python benchmarks/spark_scoring.py --rows 1000000  # quicker, printed only
    .venv/bin/python benchmarks/spark_scoring.py --rows 2000000 --write-doc  # recorded
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_child_result, run_child, write_performance_section
from scoring import MODEL, START_ENVIRONMENT, generate_rows, setup_blocks

ENGINES = ("one process", "dask 2 workers", "spark local[2]")
FULL_ROWS = 10_000_000


def child(engine: str, batch_rows: int, repeat: int) -> None:
    """In a fresh process: start the engine, score the table ``repeat`` times, print JSON."""
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
        walls = []
        for _ in range(repeat):
            lake.drop_table("scores", missing_ok=True)
            started = time.perf_counter()
            summary = batch_inference_flow(
                warehouse="bench-lake", tracking="bench-mlflow", contract=None,
                entity_sql="rows_to_score", key_columns=["customer_id"],
                feature_source="warehouse", model_name=MODEL, output_table="scores",
                batch_rows=batch_rows, **options)
            walls.append(time.perf_counter() - started)
        published = lake.read(
            "select count(*) as n, count(distinct customer_id) as keys, "
            "count(model_version) as lineage from scores").iloc[0]
    print_child_result(engine=engine, seconds=statistics.median(walls),
                       engine_start=engine_start, published=int(published["n"]),
                       keys=int(published["keys"]), lineage=int(published["lineage"]),
                       rows_published=summary["rows_published"])


def run_engine(engine: str, rows: int, batch_rows: int, repeat: int) -> dict[str, Any]:
    result = run_child(__file__, "--child", engine, "--batch-rows", str(batch_rows),
                       "--repeat", str(repeat), environment=START_ENVIRONMENT)
    assert result["published"] == result["keys"] == result["lineage"] == rows, result
    print(f"  {engine:<16} {result['seconds']:7.1f} s  (engine start "
          f"{result['engine_start']:5.1f} s, flow process peak "
          f"{result['peak_rss_mb']:6.0f} MB)", flush=True)
    return result


def report(rows: int, results: list[dict[str, Any]], load: tuple[float, float]) -> str:
    base = results[0]["seconds"]
    lines = [
        f"`batch_inference_flow` scoring {rows:,} rows of a local ParquetLake table "
        f"(5 features, scikit-learn churn pipeline), {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} at start and {load[1]:.1f} at the end. Command: "
        "`.venv/bin/python benchmarks/spark_scoring.py"
        f"{'' if rows == FULL_ROWS else f' --rows {rows} --write-doc'}`.",
        "",
        "| engine | flow wall time | vs one process | engine start | flow process peak RSS |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result['engine']} | {result['seconds']:.1f} s | "
            f"{base / result['seconds']:.2f}x | {result['engine_start']:.1f} s | "
            f"{result['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    from tests.services import start_prefect_server

    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="knot-bench-spark-"))
    os.environ["KNOT_HOME"] = str(home)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            os.environ["PREFECT_API_URL"] = stack.enter_context(start_prefect_server())
        setup_blocks(home)
        from knot_prefect.blocks.warehouses.parquet import ParquetLake

        generate_rows(ParquetLake.load("bench-lake"), args.rows)
        print(f"Scoring {args.rows:,} rows ...", flush=True)
        results = [run_engine(engine, args.rows, args.batch_rows, args.repeat)
                   for engine in ENGINES]
    text = report(args.rows, results, (load_at_start, os.getloadavg()[0]))
    print()
    print(text)
    if args.rows == FULL_ROWS or args.write_doc:
        write_performance_section("spark-scoring", "Spark scoring", text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--write-doc", action="store_true",
                        help="record a run of fewer rows than 10M in docs/performance.md")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.child:
        child(ARGS.child, ARGS.batch_rows, ARGS.repeat)
    else:
        main(ARGS)
