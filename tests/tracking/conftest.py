"""MLflow stores for the tracking tests: the embedded SQLite store and a real server.

The server is reached through a loopback reverse proxy that demands credentials
(``Authorization: Bearer`` or basic auth), as a team's authenticating gateway does, so
the tests see the headers MLflow really sends and that requests without them fail.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from knot_prefect.blocks.mlflow_tracking import MLflowTracking

TOKEN = "tok-7f3a9c-never-logged"
USERNAME = "knot-user"
PASSWORD = "pw-b81e2d-never-logged"

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class AuthProxy:
    """A reverse proxy that forwards only requests carrying the expected Authorization."""

    url: str
    expected: str
    authorized: int = 0
    rejected: int = 0
    seen_authorization: set[str] = field(default_factory=set)


def _start_proxy(upstream: str, expected: str) -> tuple[AuthProxy, http.server.HTTPServer]:
    target = urlsplit(upstream)
    state = AuthProxy(url="", expected=expected)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self) -> None:
            body = self._body()
            authorization = self.headers.get("Authorization")
            with lock:
                if authorization:
                    state.seen_authorization.add(authorization)
                if authorization != expected:
                    state.rejected += 1
                else:
                    state.authorized += 1
            if authorization != expected:
                message = b'{"error_code": "UNAUTHENTICATED", "message": "credentials required"}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Bearer realm="mlflow"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    return state, server


@pytest.fixture(scope="session")
def token_proxy(mlflow_server: str) -> Iterator[AuthProxy]:
    """The MLflow server behind a proxy that requires ``Authorization: Bearer TOKEN``."""
    state, server = _start_proxy(mlflow_server, f"Bearer {TOKEN}")
    yield state
    server.shutdown()


@pytest.fixture(scope="session")
def basic_proxy(mlflow_server: str) -> Iterator[AuthProxy]:
    """The MLflow server behind a proxy that requires HTTP basic authentication."""
    credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    state, server = _start_proxy(mlflow_server, f"Basic {credentials}")
    yield state
    server.shutdown()


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One knot home per test module: creating the SQLite store takes seconds."""
    home = tmp_path_factory.mktemp("knot-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KNOT_HOME", str(home))
        yield home


@pytest.fixture
def embedded(shared_home: Path) -> MLflowTracking:
    """The embedded store with an experiment of this test's own."""
    return MLflowTracking(experiment_name=f"exp-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def served(token_proxy: AuthProxy) -> MLflowTracking:
    """The real MLflow server, through the token-checking proxy."""
    from pydantic import SecretStr

    return MLflowTracking(
        tracking_uri=token_proxy.url,
        token=SecretStr(TOKEN),
        experiment_name=f"exp-{uuid.uuid4().hex[:8]}",
    )


def churn_frame(rows: int = 400, seed: int = 0, noise: float = 0.5) -> pd.DataFrame:
    """A small labelled frame: the label depends on f0 and f1, plus noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    logits = 2.0 * features[:, 0] - 1.5 * features[:, 1] + noise * rng.normal(size=rows)
    frame = pd.DataFrame(features, columns=["f0", "f1", "f2", "f3"])
    frame["label"] = (logits > 0).astype(int)
    return frame


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return churn_frame()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def flow_run_artifacts(flow_run_id: Any) -> list[Any]:
    """Every Prefect artifact of a flow run (its tasks' included)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def flow_run_logs(flow_run_id: Any) -> list[str]:
    """The messages a flow run sent to the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are sent in batches, in the background
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs]
