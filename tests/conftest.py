"""Shared fixtures: real services on loopback, a Prefect test harness, a knot home.

Services start once per session on free ports. Without ``KNOT_REQUIRE_SERVICES=1`` a
service that cannot start skips the tests that need it, with the reason; with it (as
in ``.ci/run``), such a service fails those tests.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services

LOGO = Path(__file__).resolve().parents[1] / "knot_prefect" / "blocks" / "logo.png"


def _serve_logo() -> str:
    """Serve the block logo on loopback: Prefect's block standard suite downloads it."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(LOGO.parent)
    )
    handler.log_message = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{LOGO.name}"


def pytest_configure(config: pytest.Config) -> None:
    # Before any knot module is imported: block classes read the logo URL once.
    os.environ.setdefault("KNOT_LOGO_URL", _serve_logo())
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    # Persisted task results (a backfill's done partitions) belong to this session:
    # Prefect's default, ~/.prefect/storage, outlives it, and a later session whose
    # temporary paths repeat would find partitions "already done".
    if "PREFECT_RESULTS_LOCAL_STORAGE_PATH" not in os.environ:
        results = tempfile.mkdtemp(prefix="knot-test-results-")
        os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = results
        config.add_cleanup(functools.partial(shutil.rmtree, results, ignore_errors=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures tests record with ``record_property`` (seconds, sizes).

    pytest itself writes them only into a JUnit XML report; here a passing run shows
    them too.
    """
    lines = [f"{report.nodeid}: " + ", ".join(f"{name}={value}" for name, value
                                                in report.user_properties)
             for outcome in ("passed", "failed")
             for report in terminalreporter.stats.get(outcome, [])
             if report.when == "call" and report.user_properties]
    if lines:
        terminalreporter.write_sep("=", "figures recorded by the tests")
        for line in lines:
            terminalreporter.write_line(line)


def services_required() -> bool:
    return os.environ.get("KNOT_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def _service(start: Callable[[], contextlib.AbstractContextManager[Any]]) -> Iterator[Any]:
    try:
        context = start()
        value = context.__enter__()
    except services.ServiceUnavailable as exc:
        if services_required():
            pytest.fail(f"KNOT_REQUIRE_SERVICES=1 and a service could not start: {exc}")
        pytest.skip(f"service unavailable: {exc}")
    try:
        yield value
    finally:
        context.__exit__(None, None, None)


# -- Prefect -----------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """Run every flow and block operation against a temporary Prefect database."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """The API URL of a real ``prefect server`` (for deployments, workers and the UI)."""
    yield from _service(services.start_prefect_server)


# -- knot home ---------------------------------------------------------------------------
@pytest.fixture
def knot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh knot home folder for this test (``KNOT_HOME``)."""
    home = tmp_path / "knot-home"
    monkeypatch.setenv("KNOT_HOME", str(home))
    return home


# -- PostgreSQL --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_service() -> Iterator[services.PostgresService]:
    """A real PostgreSQL server, started as the ``postgres`` user in a temp folder."""
    yield from _service(services.start_postgres)


@pytest.fixture
def postgres_database(postgres_service: services.PostgresService) -> dict[str, str]:
    """A fresh, empty database on the session's PostgreSQL server.

    Returns:
        ``{"name": ..., "dsn": libpq URI, "url": SQLAlchemy URL (psycopg)}``.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    postgres_service.create_database(name)
    return {
        "name": name,
        "dsn": postgres_service.dsn(name),
        "url": postgres_service.sqlalchemy_url(name),
    }


# -- other services ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """Tracking URI (``http://127.0.0.1:PORT``) of a real ``mlflow server``."""
    yield from _service(services.start_mlflow_server)


@pytest.fixture(scope="session")
def moto_s3(monkeypatch_session: pytest.MonkeyPatch) -> Iterator[str]:
    """Endpoint URL of moto's S3 server; dummy AWS credentials are set."""
    monkeypatch_session.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch_session.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch_session.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield from _service(services.start_moto_s3)


@pytest.fixture(scope="session")
def gcs_emulator(monkeypatch_session: pytest.MonkeyPatch) -> Iterator[str]:
    """Endpoint URL of gcp-storage-emulator; ``STORAGE_EMULATOR_HOST`` is set."""
    for endpoint in _service(services.start_gcs_emulator):
        monkeypatch_session.setenv("STORAGE_EMULATOR_HOST", endpoint)
        yield endpoint


@pytest.fixture(scope="session")
def redis_service() -> Iterator[str]:
    """``host:port`` of a throwaway redis-server."""
    yield from _service(services.start_redis)


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """Address of a real Dask scheduler with two worker processes."""
    yield from _service(services.start_dask_cluster)


@pytest.fixture(scope="session")
def monkeypatch_session() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch
