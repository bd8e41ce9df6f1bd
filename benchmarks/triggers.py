"""Trigger benchmark: how soon a promotion runs a deployment, against a direct API call.

One run, on this machine, with a real ``prefect server`` and a real ``prefect worker``
on a process pool, measures side by side how long it takes from the moment a caller
acts until the deployment's flow run exists (``created``) and until the worker has it
running (``start_time``):

- baseline: ``create_flow_run_from_deployment`` on the API (what ``prefect deployment
  run`` does);
- trigger: the real ``promote`` task moves ``model@champion``, emits
  ``knot.model.promoted``, and the deployment's ``promotion_trigger`` creates the run
  (event client -> event pipeline -> triggers service -> actions service).

The deployed flow is a light one (tests/triggers/promoted_flow.py) so the figures are
the orchestration's, not a flow's. Both sides alternate; each waits for its run to
finish before the next. Prints the medians and the trigger's extra latency; the full
run writes docs/performance.md ("Triggers").

Usage:
    .venv/bin/python benchmarks/triggers.py            # 6 of each
    .venv/bin/python benchmarks/triggers.py --quick    # 2 of each, no doc update
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, prepare, write_performance_section

prepare()

POOL = "bench-triggers"
MODEL = "bench-trigger-model"
FLOW = ROOT / "tests" / "triggers" / "promoted_flow.py"


@contextlib.contextmanager
def worker(api: str, folder: Path) -> Any:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    with (folder / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", POOL,
             "--type", "process"],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def wait_finished(client: Any, deployment_id: Any, count: int, timeout: float = 180) -> Any:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC)
        if len(runs) >= count and runs[-1].state and runs[-1].state.is_final():
            return runs[-1]
        time.sleep(0.2)
    raise TimeoutError(f"flow run {count} of the deployment did not finish in {timeout}s")


def latencies(run: Any, began: float, returned: float) -> dict[str, float]:
    return {"call": returned - began,
            "created": run.created.timestamp() - began,
            "started": run.start_time.timestamp() - began}


def measure(rounds: int) -> dict[str, list[dict[str, float]]]:
    from tests.services import start_prefect_server

    results: dict[str, list[dict[str, float]]] = {"api": [], "trigger": []}
    folder = Path(tempfile.mkdtemp(prefix="knot-bench-triggers-"))
    with start_prefect_server() as api:
        os.environ["PREFECT_API_URL"] = api
        import mlflow
        import numpy as np
        import pandas as pd
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolCreate
        from sklearn.linear_model import LogisticRegression

        from knot_prefect.blocks.mlflow_tracking import MLflowTracking
        from knot_prefect.deploy import deploy_flow
        from knot_prefect.tasks.mlflow_registry import promote, register_model
        from knot_prefect.tracking.runs import tracked_run

        tracking = MLflowTracking(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                                  artifact_location=(folder / "artifacts").as_uri())
        rng = np.random.default_rng(0)
        data = pd.DataFrame({"x": rng.normal(size=200)})
        data["label"] = (data["x"] > 0).astype("int64")
        versions = []
        for _ in range(rounds):
            with tracked_run(tracking):
                model = LogisticRegression().fit(data[["x"]], data["label"])
                info = mlflow.sklearn.log_model(model, name="model",
                                                pip_requirements=["scikit-learn"],
                                                serialization_format="cloudpickle")
            versions.append(register_model.fn(info.model_uri, MODEL, tracking).version)

        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
            deployment_id = deploy_flow(
                f"{FLOW}:record_promotion", pool=POOL, name="on-promotion",
                parameters={"out_dir": str(folder)}, on_promotion=[f"{MODEL}@champion"])
            with worker(api, folder):
                # Untimed warm-up: the worker's first run, the server's first automation.
                client.create_flow_run_from_deployment(
                    deployment_id, parameters={"model_name": MODEL, "alias": "x",
                                               "model_version": 0})
                count = 1
                wait_finished(client, deployment_id, count)
                for round_ in range(rounds):
                    for side in (("api", "trigger") if round_ % 2 == 0
                                 else ("trigger", "api")):
                        began = time.time()
                        if side == "api":
                            client.create_flow_run_from_deployment(
                                deployment_id, parameters={"model_name": MODEL,
                                                           "alias": "champion",
                                                           "model_version": -1})
                        else:
                            # Any version is better by more than -1 accuracy: always moves.
                            decision = promote.fn(MODEL, versions[round_], "champion",
                                                  metric="accuracy", min_delta=-1.0,
                                                  data=data, target="label",
                                                  tracking=tracking)
                            assert decision.promoted
                        returned = time.time()
                        count += 1
                        run = wait_finished(client, deployment_id, count)
                        result = latencies(run, began, returned)
                        results[side].append(result)
                        print(f"{side:>7}: call {result['call']:.2f} s, created after "
                              f"{result['created']:.2f} s, running after "
                              f"{result['started']:.2f} s", flush=True)
    return results


def report(rounds: int, results: dict[str, list[dict[str, float]]]) -> str:
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    load = os.getloadavg()[0]
    rows = []
    for side, label in (("api", "API call `create_flow_run_from_deployment` (baseline)"),
                        ("trigger", "`promote` -> `knot.model.promoted` -> trigger")):
        rows.append(f"| {label} | {median(side, 'call'):.2f} s | "
                    f"{median(side, 'created'):.2f} s | {median(side, 'started'):.2f} s |")
    # From the end of promote's call until the run exists: the event path alone.
    extra = statistics.median(r["created"] - r["call"] for r in results["trigger"])
    ratio = median("trigger", "started") / median("api", "started")
    return "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python benchmarks/triggers.py`"
        f" on {os.cpu_count()} cores ({platform.machine()}), load average {load:.1f} at the "
        f"end: a real `prefect server` (SQLite) and `prefect worker` (process pool, "
        f"polling every second) on loopback; medians of {rounds} alternating runs of each "
        "side after a warm-up. Times are from the start of the caller's call (the API "
        "request; the whole `promote`, which also scores both versions on 200 rows) until "
        "the flow run exists and until the worker has it running (the deployed flow is a "
        "light one).",
        "",
        "| how the deployment is run | the call takes | flow run created after | "
        "running after |",
        "|---|---|---|---|",
        *rows,
        "",
        f"The event path (event client, event pipeline, triggers and actions services) adds "
        f"{extra:.2f} s (median) before the run exists; time to running is {ratio:.2f}x the "
        "baseline's: the worker's polling and process start dominate both.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 of each, no doc update")
    args = parser.parse_args()
    rounds = 2 if args.quick else 6
    results = measure(rounds)
    text = report(rounds, results)
    print()
    print(text)
    if not args.quick:
        write_performance_section("triggers", "Triggers (promotion -> deployment)", text)


if __name__ == "__main__":
    main()
