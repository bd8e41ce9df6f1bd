"""A writer process for the concurrency contract.

Run as ``python -m tests.warehouses._contender SPEC MODE FIRST_ID ROWS``, where SPEC
is ``{"class": "<knot block class>", "config": {...}}``: builds its frame and block,
prints ``ready``, waits for a line on stdin (so that every writer starts at once),
then writes the frame into ``victim`` (``upsert`` keyed on ``id``, or ``append``).
A ``ConcurrentWriteError`` is retried after a short random pause, as the I/O tasks
do; the process prints ``done N`` (N conflicts met) or ``gave-up N``. Any other
error ends the process with the traceback.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time

from tests.warehouses._writer import frame

ATTEMPTS = 200


def main() -> None:
    import knot_prefect
    from knot_prefect.blocks.warehouses.base import ConcurrentWriteError

    spec, mode = json.loads(sys.argv[1]), sys.argv[2]
    first_id, rows = int(sys.argv[3]), int(sys.argv[4])
    warehouse = getattr(knot_prefect, spec["class"]).model_validate(spec["config"])
    data = frame(rows, first_id)
    with contextlib.suppress(ConcurrentWriteError):  # another writer has the DuckDB file
        warehouse.table_exists("victim")  # connect (and import) before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    conflicts = 0
    for _ in range(ATTEMPTS):
        try:
            warehouse.write(data, "victim", mode=mode, keys=["id"] if mode == "upsert" else None)
        except ConcurrentWriteError as error:
            assert "retrying" in str(error).lower() and "safe" in str(error), error
            conflicts += 1
            time.sleep(random.uniform(0.01, 0.2))
            continue
        print("done", conflicts, flush=True)
        return
    print("gave-up", conflicts, flush=True)


if __name__ == "__main__":
    main()
