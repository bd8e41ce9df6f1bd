"""``tracked_run`` against a bare ``mlflow.start_run()``, and batch scoring memory.

Run: ``.venv/bin/python benchmarks/tracking.py [--runs N] [--rows N] [--batch-rows N]``

1. Overhead. On one fresh embedded SQLite store, alternates ``with tracked_run(...)``
   and a bare ``with mlflow.start_run(experiment_id=...)`` (one metric logged in each)
   ``--runs`` times, first outside Prefect, then inside one Prefect flow run (temporary
   API), where ``tracked_run`` also looks up a resumable run, reads the Prefect context,
   tags the run and writes the link artifact. Target: median overhead <= +50 ms.

2. Memory of ``predict`` over ``--rows`` rows (default 1M x 20 float columns, a
   20-tree random forest). Each measurement runs in a fresh subprocess: after the
   imports it reads the resident set size (RSS), resets the kernel's peak-RSS mark
   (``/proc/self/clear_refs``), does the work and reads the peak (``VmHWM``). The
   increments over the post-import RSS are compared:

   - reference, "model + one batch": load the model and score one ``--batch-rows`` batch;
   - streamed: load the model and score every row, reading the Parquet file batch by
     batch (``predict_batches``) and appending predictions to a Parquet file;
   - in memory: the whole frame is loaded first; the increment of ``predict_frame`` over
     it in batches is shown next to one unbatched call, for contrast.

   Target: streamed peak <= 1.5 x (model + one batch). The subprocesses run with
   allocator settings that return freed buffers to the system (see
   ``ALLOCATOR_ENVIRONMENT``), so the peak counts live memory rather than what glibc or
   Arrow keep cached for reuse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Allocators keep freed memory for reuse, which would make the peak mark count memory
# that is no longer live: a fixed mmap threshold makes glibc hand large buffers back on
# free, and Arrow uses the same system allocator instead of its own pool.
ALLOCATOR_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "65536", "ARROW_DEFAULT_MEMORY_POOL": "system"}


# -- 1. overhead ---------------------------------------------------------------------
def overhead(runs: int) -> dict[str, float]:
    import mlflow

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.tracking import tracked_run

    tracking = MLflowTracking(experiment_name="overhead")
    experiment_id = tracking.get_or_create_experiment_id()
    mlflow.set_tracking_uri(tracking.resolved_tracking_uri())

    def knot() -> float:
        started = time.perf_counter()
        with tracked_run(tracking, run_name="knot"):
            mlflow.log_metric("x", 1.0)
        return time.perf_counter() - started

    def bare() -> float:
        started = time.perf_counter()
        with mlflow.start_run(experiment_id=experiment_id, run_name="bare"):
            mlflow.log_metric("x", 1.0)
        return time.perf_counter() - started

    def measure() -> tuple[float, float]:
        for _ in range(3):  # Warm caches and imports on both paths.
            knot(), bare()
        knot_times, bare_times = [], []
        for _ in range(runs):
            knot_times.append(knot())
            bare_times.append(bare())
        return statistics.median(knot_times), statistics.median(bare_times)

    outside = measure()

    from prefect import flow

    @flow(name="tracking-overhead")
    def inside() -> tuple[float, float]:
        return measure()

    inside_prefect = inside()
    return {
        "outside_knot_ms": outside[0] * 1000,
        "outside_bare_ms": outside[1] * 1000,
        "inside_knot_ms": inside_prefect[0] * 1000,
        "inside_bare_ms": inside_prefect[1] * 1000,
    }


# -- 2. memory -----------------------------------------------------------------------
def prepare(folder: Path, rows: int) -> str:
    """Train a small forest, log it to a local folder and write the rows to score."""
    import mlflow
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    from knot_prefect.tracking.skops import skops_trusted_types

    rng = np.random.default_rng(0)
    columns = [f"f{i}" for i in range(20)]
    train = pd.DataFrame(rng.normal(size=(5000, 20)), columns=columns)
    label = (train["f0"] + train["f1"] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0)
    model.fit(train, label)
    path = folder / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(train.head(), model.predict(train.head())),
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        skops_trusted_types=skops_trusted_types(model),
    )
    writer = None
    for start in range(0, rows, 100_000):
        count = min(100_000, rows - start)
        chunk = pd.DataFrame(rng.normal(size=(count, 20)), columns=columns)
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(folder / "rows.parquet", table.schema)
        writer.write_table(table, row_group_size=100_000)
    assert writer is not None
    writer.close()
    return str(path)


def measure_child(mode: str, folder: str, model_path: str, batch_rows: int) -> None:
    """Run inside a fresh subprocess; print the measurements as JSON."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sklearn.ensemble
    import skops.io

    # Libraries loaded before the baseline, so the model's cost is the model itself.
    assert mlflow.sklearn and skops.io and sklearn.ensemble and pa

    from knot_prefect.tasks.mlflow_predict import predict_batches, predict_frame

    def rss() -> int:
        return _status_kib("VmRSS")

    source = Path(folder) / "rows.parquet"
    frame = None
    if mode.startswith("in-memory"):
        frame = pd.read_parquet(source)
    baseline = rss()
    Path("/proc/self/clear_refs").write_text("5")  # Reset the peak-RSS mark.
    model = mlflow.pyfunc.load_model(model_path)
    after_model = rss()
    started = time.perf_counter()
    scored = 0
    if mode == "one-batch":
        batch = next(
            pq.ParquetFile(source, pre_buffer=False).iter_batches(batch_size=batch_rows)
        ).to_pandas()
        scored = len(predict_frame(batch, model, batch_rows=batch_rows))
    elif mode == "streamed":
        batches = (
            b.to_pandas()
            for b in pq.ParquetFile(source, pre_buffer=False).iter_batches(batch_size=batch_rows)
        )
        writer = None
        for predictions in predict_batches(model, batches):
            table = pa.Table.from_pandas(predictions, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(Path(folder) / "predictions.parquet", table.schema)
            writer.write_table(table)
            scored += len(predictions)
        assert writer is not None
        writer.close()
    elif mode == "in-memory-batched":
        assert frame is not None
        scored = len(predict_frame(frame, model, batch_rows=batch_rows))
    elif mode == "in-memory-whole":
        assert frame is not None
        scored = len(predict_frame(frame, model, batch_rows=len(frame)))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": scored,
                "seconds": seconds,
                "model_mib": (after_model - baseline) / 1024,
                "peak_increment_mib": (_status_kib("VmHWM") - baseline) / 1024,
            }
        )
    )


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory(rows: int, batch_rows: int) -> dict[str, dict[str, float]]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="knot-bench-predict-") as folder:
        model_path = prepare(Path(folder), rows)
        for mode in ("one-batch", "streamed", "in-memory-batched", "in-memory-whole"):
            output = subprocess.run(
                [sys.executable, __file__, "--child", mode, folder, model_path, str(batch_rows)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env={**os.environ, **ALLOCATOR_ENVIRONMENT},
            ).stdout
            results[mode] = json.loads(output.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder, model_path, batch_rows = args.child
        measure_child(mode, folder, model_path, int(batch_rows))
        return

    with tempfile.TemporaryDirectory(prefix="knot-bench-tracking-") as home:
        os.environ["KNOT_HOME"] = home
        os.environ.setdefault("PREFECT_HOME", str(Path(home) / "prefect"))
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        times = overhead(args.runs)
    print(f"\ntracked_run overhead, median of {args.runs} runs each (embedded SQLite store)")
    for where in ("outside", "inside"):
        knot, bare = times[f"{where}_knot_ms"], times[f"{where}_bare_ms"]
        label = "outside Prefect" if where == "outside" else "inside a flow run"
        print(
            f"  {label:18s} tracked_run {knot:7.1f} ms  bare start_run {bare:7.1f} ms  "
            f"overhead {knot - bare:+6.1f} ms  ratio {knot / bare:4.2f}  (target <= +50 ms)"
        )

    results = memory(args.rows, args.batch_rows)
    reference = results["one-batch"]["peak_increment_mib"]
    model_mib = results["one-batch"]["model_mib"]
    print(
        f"\npredict memory, {args.rows:,} rows x 20 columns, batches of {args.batch_rows:,} "
        f"(peak RSS over the post-import baseline; model {model_mib:.1f} MiB)"
    )
    for mode, result in results.items():
        ratio = result["peak_increment_mib"] / reference
        print(
            f"  {mode:18s} {result['rows']:>9,} rows  {result['seconds']:6.2f} s  "
            f"peak +{result['peak_increment_mib']:7.1f} MiB  x{ratio:4.2f} of model + one batch"
        )
    print("  target: streamed <= x1.50 of model + one batch")


if __name__ == "__main__":
    main()
