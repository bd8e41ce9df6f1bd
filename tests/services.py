"""Start real services on loopback for the test suite, each on a free port.

Each ``start_*`` function is a context manager that yields connection details and
stops the service (and removes its data) on exit. When a service cannot start, it
raises :class:`ServiceUnavailable` with the reason and what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

BIN = Path(sys.executable).parent


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 150,
             interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after timeout."""
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}.")
        time.sleep(interval)


class ServiceUnavailable(RuntimeError):
    """A service could not start; the message says why and what to install."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def managed_process(
    name: str,
    command: list[str],
    ready: Callable[[], bool],
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block exits; wait for ``ready()`` first."""
    log_dir = Path(tempfile.mkdtemp(prefix=f"knot-{name}-log-"))
    log_path = log_dir / "service.log"
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ServiceUnavailable(f"{name}: cannot run {command[0]!r} ({exc}).") from exc
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                if process.poll() is not None:
                    raise ServiceUnavailable(
                        f"{name} exited with code {process.returncode}:\n{_tail(log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"{name} was not ready after {timeout:.0f}s:\n{_tail(log_path)}"
                    )
                time.sleep(0.2)
            yield process
        finally:
            _stop(process)
            shutil.rmtree(log_dir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# -- PostgreSQL ------------------------------------------------------------------------
@dataclass(frozen=True)
class PostgresService:
    """A running PostgreSQL server (user ``postgres``, trust authentication)."""

    host: str
    port: int
    user: str = "postgres"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URI (for psycopg and ADBC)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def sqlalchemy_url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL using psycopg 3."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


def find_postgres_bin() -> Path:
    override = os.environ.get("KNOT_POSTGRES_BIN")
    candidates = [Path(override)] if override else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    raise ServiceUnavailable(
        "PostgreSQL: no initdb found under /usr/lib/postgresql/*/bin "
        "(apt-get install postgresql, or set KNOT_POSTGRES_BIN)."
    )


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root.
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def start_postgres() -> Iterator[PostgresService]:
    pg_bin = find_postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="knot-pg-"))
    data = root / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(root, user="postgres")
        init = subprocess.run(
            _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U",
                          "postgres", "--no-sync"]),
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise ServiceUnavailable(f"PostgreSQL initdb failed:\n{init.stderr[-2000:]}")
        port = free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        command = _as_postgres([str(pg_bin / "postgres"), "-D", str(data), *options.split()])
        with managed_process("postgresql", command, lambda: port_open(port), timeout=60):
            yield PostgresService(host="127.0.0.1", port=port)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- MLflow ------------------------------------------------------------------------------
@contextlib.contextmanager
def start_mlflow_server() -> Iterator[str]:
    """Yield the tracking URI of a real ``mlflow server`` (SQLite backend)."""
    root = Path(tempfile.mkdtemp(prefix="knot-mlflow-"))
    port = free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination", str(root / "artifacts"),
        "--workers", "1",
    ]
    # MLflow's job execution (a huey job runner and its consumer processes, with periodic
    # tasks) serves GenAI features no test uses; on it costs eight more processes and a
    # steady share of a core for the whole session.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    try:
        url = f"http://127.0.0.1:{port}"
        with managed_process("mlflow server", command, lambda: http_ok(f"{url}/health"),
                             timeout=240, env=env):
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- Prefect server ----------------------------------------------------------------------
@contextlib.contextmanager
def start_prefect_server() -> Iterator[str]:
    """Yield the API URL of a real ``prefect server`` with its own PREFECT_HOME."""
    home = Path(tempfile.mkdtemp(prefix="knot-prefect-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
    }
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
               str(port)]
    try:
        with managed_process("prefect server", command, lambda: http_ok(f"{api}/health"),
                             timeout=240, env=env):
            yield api
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- S3 (moto) ---------------------------------------------------------------------------
@contextlib.contextmanager
def start_moto_s3() -> Iterator[str]:
    """Yield the endpoint URL of moto's S3 server."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with managed_process("moto S3 server", command, lambda: http_ok(f"{url}/moto-api/"),
                         timeout=60):
        yield url


# -- GCS (gcp-storage-emulator) ----------------------------------------------------------
@contextlib.contextmanager
def start_gcs_emulator() -> Iterator[str]:
    """Yield the endpoint URL of gcp-storage-emulator (in memory)."""
    port = free_port()
    command = [str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port",
               str(port), "--in-memory"]
    with managed_process("gcp-storage-emulator", command, lambda: port_open(port),
                         timeout=60):
        yield f"http://127.0.0.1:{port}"


# -- Redis -------------------------------------------------------------------------------
@contextlib.contextmanager
def start_redis() -> Iterator[str]:
    """Yield ``host:port`` of a throwaway redis-server."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("Redis: redis-server not found (apt-get install redis-server).")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no"]
    with managed_process("redis-server", command, lambda: port_open(port), timeout=30):
        yield f"127.0.0.1:{port}"


# -- Dask --------------------------------------------------------------------------------
@contextlib.contextmanager
def start_dask_cluster(workers: int = 2) -> Iterator[str]:
    """Yield the address of a real Dask scheduler with ``workers`` worker processes."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"]
    worker = [str(BIN / "dask"), "worker", address, "--nworkers", str(workers),
              "--nthreads", "1", "--no-dashboard", "--memory-limit", "4GiB"]

    def workers_ready() -> bool:
        from distributed import Client

        try:
            with Client(address, timeout=5) as client:
                return len(client.scheduler_info()["workers"]) >= workers
        except Exception:
            return False

    with (
        managed_process("dask scheduler", scheduler, lambda: port_open(port), timeout=60),
        managed_process("dask workers", worker, workers_ready, timeout=90),
    ):
        yield address


@contextlib.contextmanager
def process_worker(
    client: Any, api_url: str, pool: str, folder: Path, env: dict[str, str] | None = None
) -> Iterator[Path]:
    """A real ``prefect worker start`` serving process pool ``pool``; yields its log path.

    The pool is created (with knot's process base job template) when missing. The
    worker polls every second and runs with the test's environment minus ``KNOT_HOME``,
    plus ``env``.
    """
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from knot_prefect.deploy import base_job_template

    with contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(
            name=pool, type="process", base_job_template=base_job_template("process")
        ))
    log_path = folder / "worker.log"
    environment = {k: v for k, v in os.environ.items() if k != "KNOT_HOME"}
    environment.update({
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        **(env or {}),
    })
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", pool,
             "--type", "process"],
            cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
