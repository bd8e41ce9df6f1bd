"""Dask scoring benchmark: ``batch_inference_flow`` on 2 Dask workers vs one process.

One run, on this machine, measures side by side:

1. Throughput on 5M rows (``--rows``): the demo's logistic-regression churn model (a
   scikit-learn pipeline served as an MLflow pyfunc) scores rows whose feature columns
   are generated in the warehouse (a ParquetLake on the local disk; Feast is not part
   of this benchmark).
   - raw: ``predict_frame`` over an in-memory frame in one process, vs
     ``dask.dataframe.map_partitions(predict_frame)`` on a LocalCluster of 2 worker
     processes (input already on the workers): the ceiling Dask gives on this machine;
   - knot: the whole flow (plan key ranges, read each range from the lake, score,
     stage the predictions with their lineage columns, commit once) in the flow
     process vs on the same 2 Dask workers, each worker reading and writing its own
     ranges; timed as Prefect records the run and as the caller waits for it; once
     more on 2 workers started with ``KNOT_WORKER_MMAP_THRESHOLD=0`` (their allocator
     left as Dask's nanny sets it) and once with two ranges per worker;
   - bare: the flow's partitions as plain functions (no Prefect), one after another
     vs two at a time on the workers: the ceiling of the part that runs in parallel.
   Every process is limited to one thread (``THREAD_LIMITS``, the lake's ``threads=1``),
   as Dask's workers are by default: a per-core comparison.
2. Peak RSS of the flow process with ``stream=True`` as the input grows from 1M to 10M
   rows (``--stream-rows``), read from and staged in the ParquetLake batch by batch and
   committed once; each size runs in a fresh process whose ``VmHWM`` is reported.

Prints medians and ratios and writes them into docs/performance.md ("Dask scoring").

Usage:
    .venv/bin/python benchmarks/scoring.py            # full run
    .venv/bin/python benchmarks/scoring.py --quick    # 500k rows, 200k -> 1M streamed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import median_time, peak_rss_kb, prepare, write_performance_section

prepare()

# Per-core comparison: one thread per process on both sides. Dask's nanny already
# starts its workers with these limits (distributed's pre-spawn-environ); without them
# here the one-process baseline would use every core for BLAS, Arrow and DuckDB. Set
# before numpy and pyarrow are imported; the lake's DuckDB gets threads=1.
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1"}
os.environ.update(THREAD_LIMITS)
# Streamed runs start in fresh processes with this environment: starting a LocalCluster
# leaks the nanny's worker settings (MALLOC_TRIM_THRESHOLD_, PYTHONHASHSEED) into
# os.environ, which a flow process started on its own would not have.
START_ENVIRONMENT = os.environ.copy()

MODEL = "bench-churn"
FEATURES = ["sessions_7d", "minutes_7d", "tickets_14d", "failed_payments_14d", "monthly_fee"]
SCORING_SQL = "select customer_id, " + ", ".join(FEATURES) + " from rows_to_score"
TARGETS = {"speedup": 1.6, "rss_mb": 1536}


# -- the world: a lake with generated rows, a registered model -----------------------------
def setup_blocks(home: Path) -> None:
    """Save the lake and tracking blocks, train and register the model."""
    import numpy as np
    import pandas as pd

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.demo.model import train_churn_classifier
    from knot_prefect.tasks import register_model
    from knot_prefect.tracking.runs import tracked_run

    ParquetLake(path=str(home / "lake"), rows_per_file=1_000_000, threads=1).save(
        "bench-lake", overwrite=True)
    tracking = MLflowTracking(tracking_uri=f"sqlite:///{home}/mlflow.db",
                              artifact_location=str(home / "artifacts"),
                              experiment_name="bench")
    tracking.save("bench-mlflow", overwrite=True)
    rng = np.random.default_rng(1)
    train = pd.DataFrame({name: rng.gamma(2.0, 3.0, 5_000) for name in FEATURES})
    for name in ("sessions_7d", "tickets_14d", "failed_payments_14d"):
        train[name] = train[name].round().astype("int64")  # counts, as in the warehouse
    train["churned"] = (train["sessions_7d"] + rng.normal(0, 2, len(train)) < 5).astype(int)
    with tracked_run(tracking, run_name="bench-train"):
        uri = train_churn_classifier(train, {})
    version = register_model.fn(uri, MODEL, tracking).version
    tracking.get_client().set_registered_model_alias(MODEL, "champion", str(version))


def generate_rows(lake: Any, rows: int, table: str = "rows_to_score") -> None:
    """Write ``rows`` rows with generated feature columns, in chunks (DuckDB ``range``)."""
    import duckdb

    chunk = 1_000_000
    lake.drop_table(table, missing_ok=True)
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        data = duckdb.sql(
            f"select range + 1 as customer_id, "
            f"(hash(range) % 40)::bigint as sessions_7d, "
            f"((hash(range * 7) % 2000) / 10.0)::double as minutes_7d, "
            f"(hash(range * 13) % 5)::bigint as tickets_14d, "
            f"(hash(range * 17) % 3)::bigint as failed_payments_14d, "
            f"([19.0, 49.0, 199.0][1 + (hash(range * 19) % 3)::int])::double as monthly_fee "
            f"from range({start}, {stop})"
        ).to_arrow_table()
        lake.write(data, table, mode="append")


# -- part 1: throughput ----------------------------------------------------------------------
def worker_allocator_raised() -> bool | None:
    """On a Dask worker: whether the partitions scored there raised the threshold."""
    import knot_prefect.flows.worker_allocator as allocator

    return allocator._tuned


def local_cluster(**environment: str) -> Any:
    """2 one-thread worker processes; ``environment`` is set while they spawn."""
    from dask.distributed import LocalCluster

    before = os.environ.copy()
    os.environ.update(environment)
    try:
        return LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                            dashboard_address=None)
    finally:
        os.environ.clear()
        os.environ.update(before)


def recorded_seconds(state: Any) -> float:
    """The flow run's own duration as Prefect recorded it (Running to Completed)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    return (run.end_time - run.start_time).total_seconds()


def throughput(rows: int, repeat: int) -> dict[str, float]:
    from dask.distributed import Client

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.flows import batch_inference_flow
    from knot_prefect.tasks import load_model

    lake = ParquetLake.load("bench-lake")
    generate_rows(lake, rows)
    model = load_model.fn(MODEL, "champion", MLflowTracking.load("bench-mlflow"))
    batch = 250_000
    cluster = local_cluster()
    # The same, with the workers' allocator left as Dask's nanny sets it.
    frozen = local_cluster(KNOT_WORKER_MMAP_THRESHOLD="0")
    try:
        with Client(cluster):
            results = raw_scoring(lake, model, batch, repeat)
        # Not default clients: prefect-dask's DaskTaskRunner connects to the default
        # client's cluster whatever address it is given.
        with (Client(cluster, set_as_default=False) as client,
              Client(frozen, set_as_default=False) as frozen_client):

            def flow(address: str | None, table: str, source: str = "rows_to_score",
                     batch_rows: int = batch, partition_rows: int | None = None,
                     ) -> tuple[float, float]:
                lake.drop_table(table, missing_ok=True)
                started = time.perf_counter()
                state = batch_inference_flow(
                    warehouse="bench-lake", tracking="bench-mlflow", contract=None,
                    entity_sql=SCORING_SQL.replace("rows_to_score", source),
                    feature_source="warehouse", model_name=MODEL, output_table=table,
                    batch_rows=batch_rows, dask_address=address,
                    partition_rows=partition_rows, return_state=True)
                wall = time.perf_counter() - started
                assert state.is_completed(), state
                return wall, recorded_seconds(state)

            # Warm-up (untimed) on a small table: first flow and task runs in each
            # process (imports, API client, Dask workers' Prefect engine) are not timed.
            generate_rows(lake, 20_000, "warmup_rows")
            for address in (None, cluster.scheduler_address, frozen.scheduler_address):
                flow(address, "scores_warmup", "warmup_rows", 10_000)
            bare = BarePartitions(lake, model, client, batch)
            bare.serial()
            bare.on_workers()
            # Interleaved, one of each per round, so that drift in the machine's load
            # touches every configuration alike.
            samples: dict[str, list[float]] = {}
            configurations: dict[str, Callable[[], tuple[float, float | None]]] = {
                "knot_one_process": lambda: flow(None, "scores_one_process"),
                "knot_dask_2_workers": lambda: flow(cluster.scheduler_address, "scores_dask"),
                "knot_dask_frozen": lambda: flow(frozen.scheduler_address, "scores_frozen"),
                "knot_dask_two_ranges_each": lambda: flow(
                    cluster.scheduler_address, "scores_four_ranges",
                    partition_rows=-(-rows // 4)),
                # No flow run, so no recorded duration.
                "bare_one_process": lambda: (bare.serial(), None),
                "bare_dask_2_workers": lambda: (bare.on_workers(), None),
            }
            for _ in range(repeat):
                for name, run in configurations.items():
                    wall, recorded = run()
                    samples.setdefault(f"{name}_s", []).append(wall)
                    if recorded is not None:
                        samples.setdefault(f"{name}_recorded_s", []).append(recorded)
            # None: no partition was scored on that worker.
            states = set(client.run(worker_allocator_raised).values())
            assert states - {None} == {True}, states
            frozen_states = set(frozen_client.run(worker_allocator_raised).values())
            assert frozen_states - {None} == {False}, frozen_states
            results.update({k: statistics.median(v) for k, v in samples.items()})
            scored = lake.read("select count(*) as n from scores_dask")["n"].iloc[0]
            assert scored == rows, f"the flow published {scored} rows of {rows}"
    finally:
        cluster.close()
        frozen.close()
    return results


def raw_scoring(lake: Any, model: Any, batch: int, repeat: int) -> dict[str, float]:
    """``predict_frame`` on an in-memory frame vs ``map_partitions`` (current client)."""
    import dask.dataframe as dd

    from knot_prefect.tasks.mlflow_predict import predict_frame

    frame = lake.read(SCORING_SQL)
    results = {"raw_one_process_s": median_time(
        lambda: predict_frame(frame, model, batch_rows=batch), repeat)}
    ddf = dd.from_pandas(frame, npartitions=max(len(frame) // batch, 2)).persist()
    meta = predict_frame(frame.head(2), model)
    # Warm-up (untimed): workers import MLflow/scikit-learn and unpickle once.
    ddf.partitions[:2].map_partitions(predict_frame, model, batch, meta=meta).compute()
    results["raw_dask_2_workers_s"] = median_time(
        lambda: ddf.map_partitions(predict_frame, model, batch, meta=meta).compute(), repeat)
    return results


class BarePartitions:
    """The flow's own partitions as plain functions: no flow, no Prefect task runs.

    The same ranges the flow plans for 2 workers, each read, scored and staged by
    ``score_range_in_warehouse``: one after another in this process, or two at
    a time on the Dask workers with ``Client.submit``. The ratio is the ceiling of the
    part of the flow that runs in parallel, on this machine, for this workload.
    """

    def __init__(self, lake: Any, model: Any, client: Any, batch_rows: int) -> None:
        from datetime import UTC, datetime

        from knot_prefect.flows.scoring import plan_partitions
        from knot_prefect.lineage.columns import Lineage

        now = datetime.now(UTC)
        self.lake, self.client, self.batch_rows = lake, client, batch_rows
        self.lineage = Lineage(
            model_name=MODEL, model_version=int(model.version), model_alias="champion",
            feature_views="warehouse columns", contract_version=None,
            source_query_hash="bench", flow_run_id=None, features_as_of=now, scored_at=now)
        self.model = model
        _, self.plan = plan_partitions(lake, SCORING_SQL, None, "customer_id", 2)

    def _arguments(self, stage_id: str) -> list[tuple[Any, ...]]:
        return [(self.lake, SCORING_SQL, None, part, self.model, ["customer_id"],
                 self.batch_rows, self.lineage, "scores_bare", stage_id)
                for part in self.plan]

    def serial(self) -> float:
        from knot_prefect.flows.scoring import score_range_in_warehouse

        stage_id = self.lake.new_stage_id()
        started = time.perf_counter()
        staged = [score_range_in_warehouse(*args)[0] for args in self._arguments(stage_id)]
        seconds = time.perf_counter() - started
        self.lake.discard_staged(staged)
        return seconds

    def on_workers(self) -> float:
        from knot_prefect.flows.scoring import score_range_in_warehouse

        stage_id = self.lake.new_stage_id()
        started = time.perf_counter()
        futures = [self.client.submit(score_range_in_warehouse, *args, pure=False)
                   for args in self._arguments(stage_id)]
        staged = [part for part, _ in self.client.gather(futures)]
        seconds = time.perf_counter() - started
        self.lake.discard_staged(staged)
        return seconds


# -- the machine's own ceiling ----------------------------------------------------------------
def _busy(seconds: float) -> float:
    """CPU-bound work for about ``seconds`` on an idle core; returns its wall time."""
    import numpy as np

    started = time.perf_counter()
    values = np.arange(200_000, dtype=np.float64)
    for _ in range(int(seconds * 400)):
        values = np.sqrt(values + 1.0)
    return time.perf_counter() - started


def machine_ceiling(jobs: int = 8, seconds: float = 0.25) -> float:
    """Wall time of ``jobs`` CPU-bound jobs in 1 process / in 2 processes.

    Plain processes, no Dask, no I/O: about 2.0 on 2 idle cores, lower when other
    work holds the cores; no 2-worker figure measured at the same time can exceed it.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    walls = {}
    for processes in (1, 2):
        with context.Pool(processes) as pool:
            pool.map(_busy, [0.05] * processes)  # start-up and imports, untimed
            started = time.perf_counter()
            pool.map(_busy, [seconds] * jobs)
            walls[processes] = time.perf_counter() - started
    return walls[1] / walls[2]


# -- part 2: peak RSS while streaming --------------------------------------------------------
def stream_child(rows: int, batch_rows: int) -> None:
    """Run in a fresh process: stream-score the lake's rows; print peak RSS as JSON."""
    from knot_prefect.blocks.warehouses.parquet import ParquetLake
    from knot_prefect.flows import batch_inference_flow

    lake = ParquetLake.load("bench-lake")
    lake.drop_table("scores_streamed", missing_ok=True)
    started = time.perf_counter()
    summary = batch_inference_flow(
        warehouse="bench-lake", tracking="bench-mlflow", contract=None,
        entity_sql=SCORING_SQL, feature_source="warehouse", model_name=MODEL,
        output_table="scores_streamed", batch_rows=batch_rows, stream=True)
    seconds = time.perf_counter() - started
    published = lake.read("select count(*) as n from scores_streamed")["n"].iloc[0]
    peak_kb = peak_rss_kb()
    print(json.dumps({"rows": rows, "published": int(published), "seconds": seconds,
                      "peak_rss_mb": peak_kb / 1024,
                      "rows_scored": summary["rows_scored"]}))


def streaming(sizes: list[int], batch_rows: int) -> list[dict[str, Any]]:
    from knot_prefect.blocks.warehouses.parquet import ParquetLake

    lake = ParquetLake.load("bench-lake")
    measured = []
    for rows in sizes:
        generate_rows(lake, rows)
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(rows), "--batch-rows", str(batch_rows)],
            check=True, capture_output=True, text=True,
            env={**START_ENVIRONMENT, "PREFECT_API_URL": os.environ["PREFECT_API_URL"],
                 "KNOT_HOME": os.environ["KNOT_HOME"]},
        ).stdout
        line = [x for x in output.splitlines() if x.startswith("{")][-1]
        result = json.loads(line)
        assert result["published"] == rows, result
        measured.append(result)
        print(f"  streamed {rows:>11,} rows: peak RSS {result['peak_rss_mb']:7.0f} MB, "
              f"{result['seconds']:6.1f} s", flush=True)
    return measured


# -- report ----------------------------------------------------------------------------------
def report(rows: int, tp: dict[str, float], stream: list[dict[str, Any]],
           batch_rows: int, load: tuple[float, float]) -> str:
    def rate(seconds: float) -> str:
        return f"{rows / seconds / 1e6:.2f} M rows/s"

    def row(what: str, one: str, two: str, target: bool = False) -> str:
        ratio = tp[one] / tp[two]
        verdict = f" ({'met' if ratio >= TARGETS['speedup'] else 'not met'})" if target else ""
        return (f"| {what} | {tp[one]:.2f} s ({rate(tp[one])}) | "
                f"{tp[two]:.2f} s ({rate(tp[two])}) | {ratio:.2f}x{verdict} |")

    limits = ", ".join(f"{k}={v}" for k, v in THREAD_LIMITS.items())
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python benchmarks/scoring.py` "
        f"on {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end. Model: the demo's scaled logistic regression "
        "as an MLflow pyfunc; feature columns generated in the warehouse (ParquetLake on "
        "the local disk); Feast is not part of this benchmark. Medians of "
        f"{ARGS.repeat} run(s) after an untimed warm-up of each configuration; the "
        "configurations take turns, one run of each per round.",
        "",
        f"Per core: every process runs one thread ({limits}; the lake's DuckDB "
        "`threads=1`; Dask workers `threads_per_worker=1`), so the one-process baseline "
        "does not use the second core for BLAS, Arrow or DuckDB.",
        "",
        f"Throughput, {rows:,} rows:",
        "",
        "| what | one process | 2 Dask workers | speed-up (target >= "
        f"{TARGETS['speedup']}x) |",
        "|---|---|---|---|",
        row("`batch_inference_flow` (read from the lake, score, stage with lineage, one "
            "commit): the flow run's duration as Prefect records it", "knot_one_process_recorded_s",
            "knot_dask_2_workers_recorded_s", target=True),
        row("the same runs, wall time of the call (adds Prefect's wait for its heartbeat "
            "thread, up to 1 s a run)", "knot_one_process_s", "knot_dask_2_workers_s"),
        row("the flow on workers whose allocator is left as Dask's nanny sets it "
            "(workers started with `KNOT_WORKER_MMAP_THRESHOLD=0`), recorded duration",
            "knot_one_process_recorded_s", "knot_dask_frozen_recorded_s"),
        row("the flow on 2 workers with two ranges each (`partition_rows` = a quarter of "
            "the rows; by default a worker gets ranges of up to 4M rows, here one each)",
            "knot_one_process_recorded_s", "knot_dask_two_ranges_each_recorded_s"),
        row("the flow's partitions as plain functions: no flow, no Prefect task runs, no "
            "plan or commit (the ceiling of the part that runs in parallel)",
            "bare_one_process_s", "bare_dask_2_workers_s"),
        row("raw scoring (`predict_frame` vs `map_partitions`, data in memory, partitions "
            "of 250,000 rows)", "raw_one_process_s", "raw_dask_2_workers_s"),
        f"| plain CPU-bound processes, no Dask, no I/O (the machine's ceiling during this "
        f"run: the lower of a check before and after) | | | "
        f"{tp['machine_2_vs_1_process']:.2f}x |",
        "",
        "Both flow runs take the same path (the lake is read and written next to the "
        "data): the flow process plans key ranges and commits; each range is read, "
        "scored and staged by the process scoring it, the flow process itself in the "
        "one-process run, a Dask worker otherwise (no row passes through the flow "
        "process). The raw row shows Dask's ceiling for data that has to travel: the "
        "model costs about 0.1 µs a row, less than moving the row to a worker and back.",
        "",
        "Prefect's flow engine joins its heartbeat thread when a run ends; the thread "
        "sleeps in steps of one second, so the call returns at the next whole second "
        "after the run's start plus up to 1 s. That rounds wall times of a few seconds "
        "to the step and makes their ratio jump, so the recorded duration is the "
        "figure held against the target.",
        "",
        f"Flow process peak RSS as the input grows (`stream=True`, batches of "
        f"{batch_rows:,} rows read from and staged in the ParquetLake, committed once; "
        f"scoring in the flow process, the worst case; target < {TARGETS['rss_mb']} MB "
        "and flat):",
        "",
        "| input rows | peak RSS | wall time |",
        "|---|---|---|",
        *[f"| {r['rows']:,} | {r['peak_rss_mb']:.0f} MB | {r['seconds']:.1f} s |"
          for r in stream],
    ]
    return "\n".join(lines)


def main() -> None:
    import contextlib

    from tests.services import start_prefect_server

    load_at_start = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="knot-bench-scoring-"))
    os.environ["KNOT_HOME"] = str(home)
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            # A real Prefect server of its own; the flow runs report to it.
            os.environ["PREFECT_API_URL"] = stack.enter_context(start_prefect_server())
        setup_blocks(home)
        if ARGS.only_stream:
            streaming(ARGS.stream_rows, ARGS.batch_rows)
            return
        print(f"Throughput on {ARGS.rows:,} rows ...", flush=True)
        ceiling_before = machine_ceiling()
        tp = throughput(ARGS.rows, ARGS.repeat)
        tp["machine_2_vs_1_process"] = min(ceiling_before, machine_ceiling())
        for name, seconds in tp.items():
            print(f"  {name:<24} {seconds:7.2f}", flush=True)
        print("Streaming ...", flush=True)
        stream = streaming(ARGS.stream_rows, ARGS.batch_rows)
    text = report(ARGS.rows, tp, stream, ARGS.batch_rows, (load_at_start, os.getloadavg()[0]))
    print()
    print(text)
    if not ARGS.quick:
        write_performance_section("dask-scoring", "Dask scoring", text)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no doc update")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--stream-rows", type=int, nargs="+",
                        default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--batch-rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only-stream", action="store_true",
                        help="only the peak-RSS part, printed, no doc update")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.stream_rows, args.repeat = 500_000, [200_000, 1_000_000], 1
        args.batch_rows = 100_000
    return args


if __name__ == "__main__":
    ARGS = parse()
    if ARGS.child:
        stream_child(ARGS.child, ARGS.batch_rows)
    else:
        main()
