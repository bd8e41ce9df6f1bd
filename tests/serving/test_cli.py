"""``knot serve`` as a user runs it: a process, JSON logs, clear start-up errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port
from tests.serving.world import MODEL, World

KNOT = str(Path(sys.executable).parent / "knot")


@pytest.mark.heavy
def test_knot_serve_process_answers_and_logs_json(world: World, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    command = [KNOT, "serve", "--model", f"{MODEL}@champion", "--features", str(world.repo),
               "--tracking", world.tracking_uri, "--port", str(port), "--refresh", "5"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        response = httpx.post(f"http://127.0.0.1:{port}/predict",
                              json={"entity": {"customer_id": world.customers[0]}}, timeout=30)
        assert response.status_code == 200
        assert response.json()["model"]["version"] == 1
        rejected = httpx.post(f"http://127.0.0.1:{port}/predict",
                              json={"entity": {"customer_id": 10**9}}, timeout=30)
        assert rejected.status_code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    records = [json.loads(line) for line in log.read_text().splitlines()
               if line.startswith("{")]
    events = {record.get("event") for record in records}
    assert {"model_switched", "started", "request_rejected"} <= events
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)


def test_bad_model_reference_is_a_clear_error() -> None:
    result = subprocess.run([KNOT, "serve", "--model", "churn", "--features", "nowhere"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "--model" in result.stderr and "NAME@ALIAS" in result.stderr
