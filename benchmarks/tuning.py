"""Tuning benchmark: ``tuning_flow`` trials on 2 Dask or 2 Ray workers vs one at a time.

One run, on this machine, measures side by side the same random search (16 trials of
``knot_prefect.demo.tuning:train_churn_trial``, a scikit-learn gradient-boosting
churn classifier on 30,000 customers, about 1-3 s of single-threaded training each;
every trial logs its model; the best is registered as ``challenger``):

- sequential: the flow with ``ThreadPoolTaskRunner(max_workers=1)``: one trial at a
  time in the flow process, no Dask;
- Dask: the flow with ``runner="tcp://..."``: a running scheduler with 2 worker
  processes of one thread each;
- Ray: the flow with ``runner="ray"``: prefect-ray's ``RayTaskRunner`` on a local Ray of
  2 CPUs that the flow starts and stops, so its wall time includes Ray's start-up (the
  ceiling row shows that start-up on its own).

Both log to the same real ``mlflow server`` (SQLite backend) on loopback. Thread
limits: OMP/MKL/OPENBLAS threads are 1 in this process and in the workers, so the
comparison is per core. Each side has an untimed warm-up search first (imports, the
cached training data in every process). Prints trials/minute, the median per-trial
training time and the ratio; the full run writes docs/performance.md ("Tuning").

Usage:
    .venv/bin/python benchmarks/tuning.py            # 16 trials, median of 3 runs
    .venv/bin/python benchmarks/tuning.py --quick    # 8 trials, 1 run, no doc update
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from typing import Any

from _common import PERFORMANCE_DOC, ROOT, prepare, write_performance_section

prepare()

# Per-core comparison: one BLAS/OpenMP thread in this process and in the workers it
# starts (they inherit the environment). Set before numpy is imported.
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1"}
os.environ.update(THREAD_LIMITS)
# The servers, Dask and Ray workers this run starts import from bytecode compiled once
# for the run (as the test suite does), not from source in every process.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", tempfile.mkdtemp(prefix="knot-bench-pycache-"))

TRAIN_FN = "knot_prefect.demo.tuning:train_churn_trial"
CUSTOMERS = 30_000
SPACE: dict[str, Any] = {
    "learning_rate": {"kind": "log_uniform", "low": 0.03, "high": 0.3},
    "n_estimators": {"kind": "int", "low": 150, "high": 300, "step": 10},
    "max_depth": {"kind": "int", "low": 2, "high": 4},
    "subsample": {"kind": "uniform", "low": 0.6, "high": 1.0},
    "customers": CUSTOMERS,
}
TARGET = 1.7


def search(tracking_uri: str, trials: int, seed: int, runner: str | None) -> dict[str, Any]:
    """One search; returns wall seconds, trials/minute and the trials' own times."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from knot_prefect.blocks.mlflow_tracking import MLflowTracking
    from knot_prefect.flows import tuning_flow

    tracking = MLflowTracking(tracking_uri=tracking_uri,
                              experiment_name=f"bench-{uuid.uuid4().hex[:8]}")
    flow = tuning_flow
    if runner is None:
        flow = tuning_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))
    started = time.perf_counter()
    summary = flow(TRAIN_FN, SPACE, trials, "roc_auc", seed=seed, tracking=tracking,
                   model_name="bench-tuned", runner=runner)
    seconds = time.perf_counter() - started
    if summary["trials_failed"]:
        raise RuntimeError(f"{summary['trials_failed']} trials failed: {summary['trials']}")
    return {
        "seconds": seconds,
        "per_minute": 60 * trials / seconds,
        "trial_seconds": statistics.median(t["seconds"] for t in summary["trials"]),
        "best_auc": summary["best_metrics"]["roc_auc"],
    }


def _metrics_only(params: dict[str, Any]) -> dict[str, float]:
    from knot_prefect.demo.tuning import train_churn_trial

    return dict(train_churn_trial(params).metrics)


def raw(address: str | None, trials: int, seed: int) -> dict[str, Any]:
    """The same trainings without Prefect or MLflow: a loop, ``Client.map`` or Ray tasks."""
    from knot_prefect.tuning.space import plan_trials

    points = plan_trials(SPACE, trials, "random", seed)
    if address == "ray":
        return _raw_ray(points)
    started = time.perf_counter()
    if address is None:
        for point in points:
            _metrics_only(point)
    else:
        from distributed import Client

        with Client(address) as client:
            client.gather(client.map(_metrics_only, points, pure=False))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "per_minute": 60 * len(points) / seconds}


def _raw_ray(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainings as Ray tasks on a local Ray of 2 CPUs; its start-up timed apart."""
    import ray

    from knot_prefect.flows.ray_runner import local_ray_options

    started = time.perf_counter()
    ray.init(address="local", **local_ray_options(2))
    try:
        ready = time.perf_counter()
        train = ray.remote(num_cpus=1)(_metrics_only)
        ray.get([train.remote(point) for point in points])
        seconds = time.perf_counter() - ready
    finally:
        ray.shutdown()
    return {"seconds": seconds, "per_minute": 60 * len(points) / seconds,
            "startup": ready - started}


def measure(trials: int, repeat: int) -> dict[str, list[dict[str, Any]]]:
    import contextlib

    from tests.services import start_dask_cluster, start_mlflow_server, start_prefect_server

    results: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("sequential", "dask", "ray", "raw-sequential", "raw-dask",
                              "raw-ray")}
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            # A real Prefect server, as a deployment has (not an in-process one).
            os.environ["PREFECT_API_URL"] = stack.enter_context(start_prefect_server())
        tracking_uri = stack.enter_context(start_mlflow_server())
        address = stack.enter_context(start_dask_cluster(workers=2))
        sides: dict[str, str | None] = {"sequential": None, "dask": address, "ray": "ray"}
        for name, runner in sides.items():
            print(f"warm-up: {name}", flush=True)
            search(tracking_uri, 4, seed=0, runner=runner)
        for attempt in range(repeat):
            for name, runner in sides.items():
                result = raw(runner, trials, seed=100 + attempt)
                results[f"raw-{name}"].append(result)
                print(f"raw {name:>10}: {result['seconds']:6.1f} s, "
                      f"{result['per_minute']:5.1f} trials/min", flush=True)
            # Rotate the order so slow drift of the machine does not favour one side.
            order = list(sides)[attempt % len(sides):] + list(sides)[:attempt % len(sides)]
            for name in order:
                result = search(tracking_uri, trials, seed=100 + attempt, runner=sides[name])
                results[name].append(result)
                print(f"{name:>10}: {result['seconds']:6.1f} s, "
                      f"{result['per_minute']:5.1f} trials/min, median trial "
                      f"{result['trial_seconds']:.2f} s", flush=True)
    return results


def report(trials: int, repeat: int, results: dict[str, list[dict[str, Any]]]) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    sequential, dask = median("sequential", "per_minute"), median("dask", "per_minute")
    ray = median("ray", "per_minute")
    ratio, ray_ratio = dask / sequential, ray / sequential
    load = os.getloadavg()[0]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python benchmarks/tuning.py` "
        f"on {os.cpu_count()} cores ({platform.machine()}), load average {load:.1f} at the "
        f"end. A random search of {trials} trials of `{TRAIN_FN}` (gradient boosting on "
        f"{CUSTOMERS:,} customers; each trial logs its model, the best is registered as "
        f"`challenger`), both sides logging to one real `mlflow server` on loopback; "
        f"OMP/MKL/OPENBLAS threads = 1 everywhere; median of {repeat} run(s) after an "
        "untimed warm-up of each side.",
        "",
        f"| runner | wall time | trials/minute | median trial | ratio (target >= {TARGET}x) |",
        "|---|---|---|---|---|",
        f"| sequential (`ThreadPoolTaskRunner(max_workers=1)`, no Dask) | "
        f"{median('sequential', 'seconds'):.1f} s | {sequential:.1f} | "
        f"{median('sequential', 'trial_seconds'):.2f} s | 1.00x |",
        f"| 2 Dask workers (`runner=\"tcp://...\"`) | {median('dask', 'seconds'):.1f} s | "
        f"{dask:.1f} | {median('dask', 'trial_seconds'):.2f} s | **{ratio:.2f}x** |",
        f"| 2 Ray workers (`runner=\"ray\"`, a local Ray started by the flow) | "
        f"{median('ray', 'seconds'):.1f} s | {ray:.1f} | "
        f"{median('ray', 'trial_seconds'):.2f} s | **{ray_ratio:.2f}x** |",
        f"| ceiling: the same trainings without Prefect or MLflow (a loop vs "
        f"`Client.map` on the same workers) | {median('raw-sequential', 'seconds'):.1f} s "
        f"vs {median('raw-dask', 'seconds'):.1f} s | {median('raw-sequential', 'per_minute'):.1f}"
        f" vs {median('raw-dask', 'per_minute'):.1f} | - | "
        f"{median('raw-dask', 'per_minute') / median('raw-sequential', 'per_minute'):.2f}x |",
        f"| ceiling on Ray: the same trainings as Ray tasks on a local Ray of 2 CPUs, after "
        f"its start-up ({median('raw-ray', 'startup'):.1f} s) | "
        f"{median('raw-ray', 'seconds'):.1f} s | {median('raw-ray', 'per_minute'):.1f} | - | "
        f"{median('raw-ray', 'per_minute') / median('raw-sequential', 'per_minute'):.2f}x |",
        "",
        f"Target {'met' if ratio >= TARGET else 'NOT met'} on Dask: {ratio:.2f}x "
        f"{'>=' if ratio >= TARGET else '<'} {TARGET}x; Ray: {ray_ratio:.2f}x, its wall time "
        "including the local Ray's start-up. \"median trial\" is the wall time of "
        "one trial task (training, logging the parameters, metrics and model).",
    ]
    ceiling = median("raw-dask", "per_minute") / median("raw-sequential", "per_minute")
    share = ratio / ceiling if ceiling else 0.0
    lines += [
        "",
        f"**The ceiling decides the ratio**: the bare trainings gained {ceiling:.2f}x on 2 "
        f"workers (load average {load:.1f} at the end), and the flow reached {share:.0%} of "
        "that. A ceiling well below 2x means the second core was not fully free for this "
        "workload: other jobs, or the Prefect and MLflow servers and the flow process that "
        "share the same 2 cores with the workers.",
    ]
    return "\n".join(lines)


def main() -> None:
    options = parse()
    trials = 8 if options.quick else options.trials
    repeat = 1 if options.quick else options.repeat
    results = measure(trials, repeat)
    text = report(trials, repeat, results)
    print()
    print(text)
    if not options.quick:
        write_performance_section("tuning", "Tuning", text)
        print(f"\nWritten to {PERFORMANCE_DOC.relative_to(ROOT)}.")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 trials, 1 run, no doc update")
    parser.add_argument("--trials", type=int, default=16, help="trials per search")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side")
    return parser.parse_args()


if __name__ == "__main__":
    main()
