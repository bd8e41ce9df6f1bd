"""A writer process for the concurrency contract.

Run as ``python -m tests.warehouses._contender SPEC MODE FIRST_ID ROWS [PIECES]``, where
SPEC is ``{"class": "<knot block class>", "config": {...}}``: builds its frame and block,
prints ``ready``, waits for a line on stdin (so that every writer starts at once),
then writes the frame into ``victim`` (``upsert`` keyed on ``id``, or ``append``), in
PIECES writes one after the other (1 by default) so that writers take many turns. Piece
``k`` holds the ids equal to ``k`` modulo PIECES: writers whose ranges overlap send the
same new keys in the same turn, so every turn is a race on keys the table lacks.
A ``ConcurrentWriteError`` is retried after a short random pause, as the I/O tasks
do; the process prints ``done N`` (N conflicts met) or ``gave-up N``. Any other
error ends the process with the traceback.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.warehouses._writer import frame

ATTEMPTS = 200
ROOT = Path(__file__).resolve().parents[2]


def block_spec(warehouse: Any) -> dict[str, Any]:
    """How a writer process rebuilds ``warehouse`` (secrets included: test values)."""
    config = warehouse.model_dump(mode="json", context={"include_secrets": True})
    return {"class": type(warehouse).__name__, "config": config}


def run_writers(
    spec: dict[str, Any], writers: list[tuple[str, int]], rows: int, pieces: int = 1
) -> list[str]:
    """Start a process per ``(mode, first_id)``, release them at once, return their outcomes."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.warehouses._contender", json.dumps(spec), mode,
             str(first_id), str(rows), str(pieces)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for mode, first_id in writers
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    for process in processes:  # start them all at once
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        outcomes.append(out.split()[0])
    return outcomes


def main() -> None:
    import knot_prefect
    from knot_prefect.blocks.warehouses.base import ConcurrentWriteError

    spec, mode = json.loads(sys.argv[1]), sys.argv[2]
    first_id, rows = int(sys.argv[3]), int(sys.argv[4])
    pieces = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    warehouse = getattr(knot_prefect, spec["class"]).model_validate(spec["config"])
    data = frame(rows, first_id)
    with contextlib.suppress(ConcurrentWriteError):  # another writer has the DuckDB file
        warehouse.table_exists("victim")  # connect (and import) before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
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
            print("gave-up", conflicts, flush=True)
            return
    print("done", conflicts, flush=True)


if __name__ == "__main__":
    main()
