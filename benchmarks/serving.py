"""``knot serve`` against ``mlflow models serve`` of the same model, side by side.

Run: ``.venv/bin/python benchmarks/serving.py [--quick] [--requests N] [--concurrency N]``

Builds the churn demo world in a temp folder (Feast repo with a materialized SQLite
online store, the model registered in an embedded MLflow store), then starts both
services on loopback, each as its own process with one uvicorn worker:

- knot: ``knot serve --model churn-serve@champion --features REPO`` answers
  ``POST /predict {"entity": {"customer_id": ID}}``: it reads the customer's five
  features from the online store, then scores them.
- baseline: ``mlflow models serve -m models:/churn-serve/1 --env-manager local``
  answers ``POST /invocations`` with the same five feature values in the request
  (read beforehand from the same online store): no feature store at all.

One load generator (asyncio, raw HTTP/1.1 on keep-alive connections, so its own cost
stays small) sends the same sequence of customers to each: a warm-up, then
``--requests`` single-entity requests at a fixed ``--concurrency``. The two services
alternate for ``--runs`` rounds; medians over rounds are printed with the ratios.
Targets: knot p99 < 25 ms and knot requests/s >= 1x the baseline.

``--shadow`` compares ``knot serve`` with and without ``--shadow challenger`` instead
(the challenger scores every request off the response path and its rows are appended to
a DuckDB table): target, shadowing adds < 10% to p99 at concurrency 8. It also prints
each service's CPU time per request (the shadowed one's split into the serving process
and the shadow's own process) and the requests the shadow dropped: what the shadow takes
from the machine and from the answering process, less blurred by other load than p99.
``--shadow-from DIR`` (repeatable) adds a shadowed service run from another checkout of
knot-prefect (its ``knot_prefect`` first on the path), in the same alternating rounds:
versions of the shadow compared on one machine state, which on a shared machine varies
more between runs than within one.

The load generator runs on the same machine as the service it measures, so on a
2-core machine it takes CPU from the service; both services share that handicap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(command: list[str], health: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """Start a server process, wait until ``health`` answers 200, stop it afterwards.

    Yields the process id (also its process group's).
    """
    import httpx

    with open(log, "wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            # Start-up (feast, mlflow and skops imports, model load) takes minutes on a
            # busy 2-core machine.
            deadline = time.monotonic() + 600
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(health, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{health} did not answer: {log.read_text()[-2000:]}")
                time.sleep(0.25)
            yield process.pid
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def shadow_report(port: int) -> dict[str, Any] | None:
    """The service's ``GET /shadow`` counts; None where its version has no such route."""
    import httpx

    answer = httpx.get(f"http://127.0.0.1:{port}/shadow", timeout=10)
    return answer.json() if answer.status_code == 200 else None


def cpu_seconds(group: int, leader_only: bool = False) -> float:
    """CPU time (user and system) used so far by the processes of a process group
    (or by its leader alone: the service's own process, not the shadow's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and (  # fields[2] is the process group (field 5 of stat)
                not leader_only or int(stat.parent.name) == group):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def _connection_loop(
    port: int, path: str, bodies: list[bytes], queue: asyncio.Queue[int], latencies: list[float],
    failures: list[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    try:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = bodies[index % len(bodies)]
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                failures.append(f"{status_line!r} {payload[:200]!r}")
    finally:
        writer.close()


async def _load(port: int, path: str, bodies: list[bytes], requests: int,
                concurrency: int) -> dict[str, Any]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(
        _connection_loop(port, path, bodies, queue, latencies, failures)
        for _ in range(concurrency)
    ))
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "rps": len(latencies) / wall,
    }


def measure(port: int, path: str, bodies: list[bytes], requests: int, warmup: int,
            concurrency: int) -> dict[str, Any]:
    asyncio.run(_load(port, path, bodies, warmup, concurrency))
    return asyncio.run(_load(port, path, bodies, requests, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer requests and rounds.")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--shadow", action="store_true",
                        help="Compare knot serve with and without --shadow challenger.")
    parser.add_argument("--shadow-from", action="append", default=[], metavar="DIR",
                        help="With --shadow: also a shadowed knot serve from this checkout.")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup, args.runs = 600, 100, 1

    from knot_prefect.blocks.feast_store import FeastFeatureStore
    from knot_prefect.tasks import online_features
    from tests.serving.world import FEATURES, MODEL, build_world

    folder = Path(tempfile.mkdtemp(prefix="knot-serving-bench-"))
    try:
        print(f"Building the world ({args.customers} customers) in {folder} ...", flush=True)
        world = build_world(folder, customers=args.customers)
        customers = world.customers
        frame = online_features.fn(FeastFeatureStore(repo_path=str(world.repo)),
                                   [{"customer_id": c} for c in customers], "churn_model")
        knot_bodies = [json.dumps({"entity": {"customer_id": c}}).encode() for c in customers]
        mlflow_bodies = [
            json.dumps({"dataframe_split": {"columns": FEATURES,
                                            "data": [frame.loc[i, FEATURES].tolist()]}}).encode()
            for i in range(len(frame))
        ]
        # mlflow models serve starts `uvicorn` by name: the venv's bin must be on PATH.
        env = {**os.environ, "MLFLOW_TRACKING_URI": world.tracking_uri,
               "PYTHONWARNINGS": "ignore", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        if args.shadow:
            shadow_benchmark(args, world, knot_bodies, env, folder)
            return
        knot_port, mlflow_port = free_port(), free_port()
        knot_command = [str(BIN / "knot"), "serve", "--model", f"{MODEL}@champion",
                        "--features", str(world.repo), "--tracking", world.tracking_uri,
                        "--port", str(knot_port), "--log-level", "warning"]
        mlflow_command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}/1",
                          "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port),
                          "-w", "1"]
        results: dict[str, list[dict[str, Any]]] = {"knot": [], "mlflow": []}
        with service(knot_command, f"http://127.0.0.1:{knot_port}/readyz", env,
                     folder / "knot.log"), \
                service(mlflow_command, f"http://127.0.0.1:{mlflow_port}/ping", env,
                        folder / "mlflow.log"):
            for run in range(args.runs):
                order = ["knot", "mlflow"] if run % 2 == 0 else ["mlflow", "knot"]
                for name in order:
                    port, path, bodies = (
                        (knot_port, "/predict", knot_bodies) if name == "knot"
                        else (mlflow_port, "/invocations", mlflow_bodies)
                    )
                    result = measure(port, path, bodies, args.requests, args.warmup,
                                     args.concurrency)
                    results[name].append(result)
                    print(f"run {run + 1} {name:6s} p50 {result['p50_ms']:6.2f} ms  "
                          f"p99 {result['p99_ms']:6.2f} ms  {result['rps']:7.1f} req/s",
                          flush=True)
        median = {
            name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for name, runs in results.items()
        }
        knot, base = median["knot"], median["mlflow"]
        print()
        print(f"single entity, concurrency {args.concurrency}, {args.requests} requests x "
              f"{args.runs} run(s), {os.cpu_count()} CPUs shared with the load generator")
        print(f"{'':28s}{'p50 ms':>10s}{'p99 ms':>10s}{'req/s':>10s}")
        print(f"{'knot serve (Feast lookup)':28s}{knot['p50_ms']:10.2f}{knot['p99_ms']:10.2f}"
              f"{knot['rps']:10.1f}")
        print(f"{'mlflow models serve':28s}{base['p50_ms']:10.2f}{base['p99_ms']:10.2f}"
              f"{base['rps']:10.1f}")
        print(f"ratio knot/mlflow: req/s {knot['rps'] / base['rps']:.2f}x (target >= 1), "
              f"p50 {knot['p50_ms'] / base['p50_ms']:.2f}x, "
              f"p99 {knot['p99_ms'] / base['p99_ms']:.2f}x")
        print(f"knot p99 {knot['p99_ms']:.2f} ms (target < 25 ms): "
              f"{'met' if knot['p99_ms'] < 25 else 'MISSED'}; throughput target "
              f"{'met' if knot['rps'] >= base['rps'] else 'MISSED'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def shadow_benchmark(args: argparse.Namespace, world: Any, bodies: list[bytes],
                     env: dict[str, str], folder: Path) -> None:
    """knot serve alone against knot serve --shadow challenger, alternating rounds."""
    from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
    from tests.serving.world import MODEL

    # The shadow table's warehouse is a block document: Prefect's ephemeral API in a
    # PREFECT_HOME of this run, which the service process opens too.
    env = {**env, "PREFECT_HOME": str(folder / "prefect-home")}
    os.environ["PREFECT_HOME"] = env["PREFECT_HOME"]
    print(f"load average at the start: {os.getloadavg()[0]:.1f}", flush=True)
    # name -> the checkout it runs from (None: this one); a shadowed one writes its own file.
    sources: dict[str, str | None] = {"knot": None, "knot+shadow": None}
    for number, checkout in enumerate(args.shadow_from, 1):
        sources[f"knot+shadow/{number}"] = str(Path(checkout).resolve())
    shadowed = [name for name in sources if name != "knot"]
    ports = {name: free_port() for name in sources}
    for number in range(len(shadowed)):
        DuckDBWarehouse(path=str(folder / f"shadow{number}.duckdb")).save(
            f"bench-shadow{number}", overwrite=True)
    commands = {
        name: [str(BIN / "knot"), "serve", "--model", f"{MODEL}@champion",
               "--features", str(world.repo), "--tracking", world.tracking_uri,
               "--port", str(port), "--log-level", "warning",
               *(["--shadow", "challenger", "--warehouse", f"bench-shadow{shadowed.index(name)}"]
                 if name in shadowed else [])]
        for name, port in ports.items()
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
    cpu: dict[str, float] = dict.fromkeys(ports, 0.0)
    serving_cpu = dict.fromkeys(shadowed, 0.0)  # a shadowed service's own process
    reports: dict[str, dict[str, Any] | None] = dict.fromkeys(shadowed)
    with contextlib.ExitStack() as stack:
        groups = {
            name: stack.enter_context(service(
                commands[name], f"http://127.0.0.1:{ports[name]}/readyz",
                {**env, "PYTHONPATH": checkout} if checkout else env,
                folder / f"{name.replace('+', '-').replace('/', '-')}.log"))
            for name, checkout in sources.items()
        }
        for run in range(args.runs):
            turn = run % len(ports)  # each service first in turn
            order = list(ports)[turn:] + list(ports)[:turn]
            for name in order:
                used = cpu_seconds(groups[name])
                own = cpu_seconds(groups[name], leader_only=True)
                result = measure(ports[name], "/predict", bodies, args.requests, args.warmup,
                                 args.concurrency)
                if name in shadowed:
                    time.sleep(1.5)  # the shadow's last batch and write of the round
                    reports[name] = shadow_report(ports[name])
                    serving_cpu[name] += cpu_seconds(groups[name], leader_only=True) - own
                cpu[name] += cpu_seconds(groups[name]) - used
                results[name].append(result)
                print(f"run {run + 1} {name:14s} p50 {result['p50_ms']:6.2f} ms  "
                      f"p99 {result['p99_ms']:6.2f} ms  {result['rps']:7.1f} req/s",
                      flush=True)
    median = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
              for name, runs in results.items()}
    alone = median["knot"]
    print()
    print(f"single entity, concurrency {args.concurrency}, {args.requests} requests x "
          f"{args.runs} run(s), {os.cpu_count()} CPUs shared with the load generator")
    for name, checkout in sources.items():
        if checkout:
            print(f"{name}: {checkout}")
    print(f"{'':28s}{'p50 ms':>10s}{'p99 ms':>10s}{'req/s':>10s}")
    for name in sources:
        label = "knot serve" + name[len("knot"):].replace("+shadow", " --shadow")
        print(f"{label:28s}{median[name]['p50_ms']:10.2f}{median[name]['p99_ms']:10.2f}"
              f"{median[name]['rps']:10.1f}")
    served = args.runs * (args.requests + args.warmup)
    per_request = {name: 1000 * seconds / served for name, seconds in cpu.items()}
    for number, name in enumerate(shadowed):
        rows = DuckDBWarehouse(path=str(folder / f"shadow{number}.duckdb")).read(
            "select count(*) as n from shadow_scores")["n"].iloc[0]
        own = 1000 * serving_cpu[name] / served
        added = median[name]["p99_ms"] / alone["p99_ms"] - 1
        print(f"{name}: service CPU per request: knot serve {per_request['knot']:.2f} ms, "
              f"with the shadow {per_request[name]:.2f} ms "
              f"({per_request[name] / per_request['knot'] - 1:+.1%}), of which the serving "
              f"process {own:.2f} ms ({own / per_request['knot'] - 1:+.1%}) and the "
              f"shadow's process {per_request[name] - own:.2f} ms")
        print(f"{name}: shadow rows in the table after the service stopped: {rows} of "
              f"{served} requests ({served - rows} not there)")
        report = reports[name]
        if report is not None:  # GET /shadow after the last round, the service still up
            print(f"{name}: the shadow's own counts: {report['offered']} offered, "
                  f"{report['sampled']} sampled, {report['dropped']} dropped (queue full "
                  f"or process gone), {report['written']} rows written, "
                  f"{report['lost']} lost, {report['failed']} failed")
        print(f"{name}: shadowing adds {added:+.1%} to p99 (target < 10%): "
              f"{'met' if added < 0.10 else 'MISSED'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
