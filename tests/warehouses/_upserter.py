"""An upserting process for the concurrency tests.

Run as ``python -m tests.warehouses._upserter URL FAST_PATH FIRST_ID ROWS``: builds its
frame, prints ``ready``, waits for a line on stdin (so that every writer starts at
once), upserts the frame into ``victim`` keyed on ``id`` and prints ``done``.
"""

from __future__ import annotations

import sys

from tests.warehouses._writer import frame


def main() -> None:
    from knot_prefect import SqlWarehouse

    url, fast_path, first_id, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    warehouse = SqlWarehouse(url=url, fast_path=fast_path == "fast")
    data = frame(rows, first_id)
    warehouse.table_exists("victim")  # connect before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    warehouse.write(data, "victim", mode="upsert", keys=["id"])
    print("done", flush=True)


if __name__ == "__main__":
    main()
