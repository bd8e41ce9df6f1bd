"""``knot serve`` on a team's table: answers over HTTP, compared with batch inference's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.services import free_port
from tests.templates.datasets import Dataset

KNOT = str(Path(sys.executable).parent / "knot")
OUTPUTS = ("prediction", "probability", "probabilities")


@contextmanager
def served_in_process(spec: str) -> Iterator[str]:
    """``knot serve --spec SPEC``'s application on a loopback port of this process."""
    from knot_prefect.serving import ServeSettings, build_app
    from tests.serving.world import ServerThread

    with ServerThread(build_app(ServeSettings.from_spec(spec))) as url:
        yield url


@contextmanager
def served_process(command: list[str], cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """A ``knot serve`` command run as written, in its own process; yields its URL."""
    port = free_port()
    log = cwd / "serve.log"
    environment = {**os.environ, **env, "KNOT_SERVE_PORT": str(port),
                   "PYTHONWARNINGS": "ignore"}
    with open(log, "wb") as output:
        process = subprocess.Popen([KNOT, *command[1:]] if command[0] == "knot" else command,
                                   cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                   env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=url, timeout=2) as client:
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def assert_answer_is_the_batch_row(answer: dict[str, Any], row: pd.Series, data: Dataset
                                   ) -> None:
    """The served answer has the task's shape and batch inference's values for the row."""
    given = {name for name in OUTPUTS if name in answer}
    if data.task == "regression":
        assert given == {"prediction"}
        assert answer["prediction"] == pytest.approx(row["prediction"], rel=1e-9)
        return
    assert answer["prediction"] == row["prediction"]
    if data.task == "binary":
        assert given == {"prediction", "probability"}
        assert answer["probability"] == pytest.approx(row["probability"], rel=1e-9)
    else:
        classes = sorted(set(data.frame[data.target]))
        assert given == {"prediction", "probabilities"}
        assert answer["probabilities"] == pytest.approx(
            {label: row[f"probability_{label}"] for label in classes}, rel=1e-9)


def assert_serves_like_batch(url: str, data: Dataset, scores: pd.DataFrame) -> None:
    """A batch and a single request answer as batch inference scored the same rows.

    Args:
        url: The running service.
        data: The dataset served.
        scores: Batch inference's output table.
    """
    rows = scores.sort_values(data.key).iloc[[0, len(scores) // 2, len(scores) - 1]]
    keys = [{data.key: int(key)} for key in rows[data.key]]
    response = httpx.post(f"{url}/predict", json={"entities": keys}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["version"] == int(rows["model_version"].iloc[0])
    assert body["feature_view_versions"] == rows["feature_views"].iloc[0] == "warehouse columns"
    for answer, key, (_, row) in zip(body["predictions"], keys, rows.iterrows(), strict=True):
        assert answer["entity"] == key
        assert_answer_is_the_batch_row(answer, row, data)

    single = httpx.post(f"{url}/predict", json={"entity": keys[1]}, timeout=60)
    assert single.status_code == 200, single.text
    assert_answer_is_the_batch_row(single.json()["predictions"][0], rows.iloc[1], data)

    unknown = httpx.post(f"{url}/predict", json={"entity": {data.key: 987_654_321}},
                         timeout=60)
    assert unknown.status_code == 404
    assert f"{data.key}=987654321" in unknown.json()["message"]
