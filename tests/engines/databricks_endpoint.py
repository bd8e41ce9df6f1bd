"""A recording stand-in for Databricks' Jobs API over HTTPS, for tests at the client's boundary.

No Databricks workspace is reachable here, so prefect-databricks' real client (httpx,
``https://{databricks_instance}/api/``) is pointed at this local endpoint, served with a
self-signed certificate the client is told to trust (``client_kwargs={"verify": ...}``).
It answers ``jobs/runs/submit``, ``jobs/runs/get`` and ``jobs/runs/get-output`` and
records every request. What a submitted run does is the test's ``job`` function; the
run's terminal state is the test's to choose.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.recording_endpoint import JsonHandler, serve


@dataclass
class DatabricksEndpoint:
    instance: str = ""
    certificate: str = ""
    requests: list[tuple[str, str, Any, str]] = field(default_factory=list)
    job: Callable[[dict[str, Any]], str] = lambda payload: ""
    result_state: str = "SUCCESS"
    state_message: str = ""
    logs: dict[int, str] = field(default_factory=dict)
    polls: dict[int, int] = field(default_factory=dict)
    jobs: dict[int, threading.Thread] = field(default_factory=dict)

    def reset(self) -> None:
        self.requests.clear()
        self.logs.clear()
        self.polls.clear()
        self.jobs.clear()
        self.result_state, self.state_message = "SUCCESS", ""

    def submit(self, run_id: int, payload: dict[str, Any]) -> None:
        """Start the run in the background, as Databricks does; a failing job fails it."""
        def run_job() -> None:
            try:
                self.logs[run_id] = self.job(payload)
            except Exception as error:  # the job's own failure: the run's state message
                self.result_state, self.state_message = "FAILED", repr(error)

        self.logs[run_id] = ""
        if self.result_state == "SUCCESS":
            self.jobs[run_id] = threading.Thread(target=run_job, daemon=True)
            self.jobs[run_id].start()

    def run(self, run_id: int) -> dict[str, Any]:
        """RUNNING when first asked about and while the job runs, then TERMINATED."""
        self.polls[run_id] = self.polls.get(run_id, 0) + 1
        job = self.jobs.get(run_id)
        if self.polls[run_id] == 1 or (job is not None and job.is_alive()):
            state = {"life_cycle_state": "RUNNING", "state_message": ""}
        else:
            state = {"life_cycle_state": "TERMINATED", "result_state": self.result_state,
                     "state_message": self.state_message}
        return {"run_id": run_id, "state": state,
                "run_page_url": f"https://{self.instance}/#job/runs/{run_id}",
                "tasks": [{"run_id": run_id + 1, "task_key": "knot-score"}]}


def _handler(state: DatabricksEndpoint) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            path, query = self.url_parts()
            state.requests.append(("GET", path, query, self.headers["Authorization"]))
            run_id = int(query["run_id"][0])
            if path == "/api/2.1/jobs/runs/get":
                self.send_json(200, state.run(run_id))
            elif path == "/api/2.1/jobs/runs/get-output":
                self.send_json(200, {"logs": state.logs.get(run_id - 1, ""), "metadata": {}})
            else:
                self.send_json(404, {"error_code": "ENDPOINT_NOT_FOUND"})

        def do_POST(self) -> None:
            body = json.loads(self.read_body())
            state.requests.append(("POST", self.path, body, self.headers["Authorization"]))
            if self.path != "/api/2.1/jobs/runs/submit":
                self.send_json(404, {"error_code": "ENDPOINT_NOT_FOUND"})
                return
            run_id = 100 + 10 * len(state.logs)
            state.submit(run_id, body)
            self.send_json(200, {"run_id": run_id})

    return Handler


def _self_signed(folder: Path) -> tuple[str, str]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return str(cert), str(key)


def start_endpoint(folder: Path) -> Iterator[DatabricksEndpoint]:
    """Serve the endpoint over HTTPS on a free loopback port until the generator closes."""
    state = DatabricksEndpoint()
    cert, key = _self_signed(folder)
    server = serve(_handler(state), tls=(cert, key))
    state.instance, state.certificate = f"127.0.0.1:{server.server_address[1]}", cert
    try:
        yield state
    finally:
        server.shutdown()
