"""Writer processes for the concurrency contract, started once and reused.

``python -m tests.warehouses._contender`` prints ``started``, then serves jobs: a JSON
line ``{"spec": ..., "env": ..., "mode": ..., "first_id": ..., "rows": ..., "pieces": ...}``,
where ``spec`` is ``{"class": "<knot block class>", "config": {...}}``. For each job it
builds its frame and block, connects, prints ``ready`` and waits for ``go`` (so that
every writer starts at once; any other line skips the job), then writes the frame
into ``victim`` (``upsert`` keyed on ``id``, or ``append``), in ``pieces`` writes one
after the other so that writers take many turns. Piece ``k`` holds the ids equal to
``k`` modulo ``pieces``: writers whose ranges overlap send the same new keys in the
same turn, so every turn is a race on keys the table lacks. A ``ConcurrentWriteError``
is retried after a short random pause, as the I/O tasks do; the job ends with
``done N`` (N conflicts met), ``gave-up N`` or ``error <traceback as JSON>``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any

from tests.warehouses._writer import frame

ATTEMPTS = 200
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300  # for an answer to a job
START_TIMEOUT_S = 600  # for all imports on a loaded machine


def block_spec(warehouse: Any) -> dict[str, Any]:
    """How a writer process rebuilds ``warehouse`` (secrets included: test values)."""
    config = warehouse.model_dump(mode="json", context={"include_secrets": True})
    return {"class": type(warehouse).__name__, "config": config}


class WriterPool:
    """Writer processes that serve one job after another (imports paid once)."""

    def __init__(self, size: int) -> None:
        # closed in close(): the logs live as long as the pool
        self._logs = [tempfile.TemporaryFile(mode="w+") for _ in range(size)]  # noqa: SIM115
        self._processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.warehouses._contender"], cwd=ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            )
            for log in self._logs
        ]
        for index in range(size):
            self._expect(index, "started", timeout=START_TIMEOUT_S)

    def run(
        self, spec: dict[str, Any], writers: list[tuple[str, int]], rows: int, pieces: int = 1
    ) -> list[str]:
        """One job per ``(mode, first_id)``, released at once; their outcomes in order."""
        assert len(writers) <= len(self._processes), "more writers than processes"
        for index, (mode, first_id) in enumerate(writers):
            job = {"spec": spec, "env": dict(os.environ), "mode": mode, "first_id": first_id,
                   "rows": rows, "pieces": pieces}
            self._send(index, json.dumps(job))
        answers = [self._line(index) for index in range(len(writers))]
        signal = "go" if answers == ["ready"] * len(writers) else "skip"
        for index, answer in enumerate(answers):
            if answer == "ready":
                self._send(index, signal)
        assert signal == "go", f"a writer could not start: {self._errors(answers)}"
        outcomes = [self._line(index) for index in range(len(writers))]
        assert not any(o.startswith("error") for o in outcomes), self._errors(outcomes)
        return [outcome.split()[0] for outcome in outcomes]

    def close(self) -> None:
        for process in self._processes:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
        for process, log in zip(self._processes, self._logs, strict=True):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

    def _send(self, index: int, line: str) -> None:
        stdin = self._processes[index].stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def _line(self, index: int, timeout: float = TIMEOUT_S) -> str:
        process = self._processes[index]
        stdout: IO[str] | None = process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline().strip() if ready else ""
        if not line:
            log = self._logs[index]
            log.seek(0)
            raise AssertionError(
                f"writer {index} gave no answer in {timeout:.0f} s (exit code "
                f"{process.poll()}): {log.read()[-3000:]}"
            )
        return line

    def _expect(self, index: int, expected: str, timeout: float) -> None:
        line = self._line(index, timeout)
        assert line == expected, f"writer {index} said {line!r}, not {expected!r}"

    @staticmethod
    def _errors(answers: list[str]) -> str:
        return "\n".join(
            json.loads(answer.split(maxsplit=1)[1])[-3000:]
            for answer in answers if answer.startswith("error")
        )


def serve_job(job: dict[str, Any]) -> str:
    """Build the block and frame, say ``ready``, wait for ``go``, write; the outcome."""
    import knot_prefect
    from knot_prefect.blocks.warehouses.base import ConcurrentWriteError

    os.environ.update(job["env"])
    spec, mode, pieces = job["spec"], job["mode"], job["pieces"]
    warehouse = getattr(knot_prefect, spec["class"]).model_validate(spec["config"])
    data = frame(job["rows"], job["first_id"])
    with contextlib.suppress(ConcurrentWriteError):  # another writer has the DuckDB file
        warehouse.table_exists("victim")  # connect before the start signal
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return "skipped"
    conflicts = 0
    ids = data.column("id").to_numpy()
    for turn in range(pieces):
        piece = data.filter(ids % pieces == turn)
        for _ in range(ATTEMPTS):
            try:
                warehouse.write(piece, "victim", mode=mode,
                                keys=["id"] if mode == "upsert" else None)
            except ConcurrentWriteError as error:
                assert "retrying" in str(error).lower() and "safe" in str(error), error
                conflicts += 1
                time.sleep(random.uniform(0.01, 0.2))
                continue
            break
        else:
            return f"gave-up {conflicts}"
    return f"done {conflicts}"


def warm_up() -> None:
    """Import what every job needs once, before saying ``started``."""
    import knot_prefect

    knot_prefect.DuckDBWarehouse(path=":memory:").table_exists("warm")  # prefect, duckdb
    frame(1)
    for driver in ("adbc_driver_postgresql.dbapi", "sqlalchemy", "psycopg", "s3fs"):
        with contextlib.suppress(ImportError):  # each backend's driver, where installed
            importlib.import_module(driver)


def main() -> None:
    warm_up()
    print("started", flush=True)
    for line in sys.stdin:
        try:
            outcome = serve_job(json.loads(line))
        except Exception:
            outcome = "error " + json.dumps(traceback.format_exc())
        if outcome != "skipped":
            print(outcome, flush=True)


if __name__ == "__main__":
    main()
