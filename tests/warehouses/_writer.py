"""A writer process for the kill tests: builds a large frame, says so, then writes it.

Run as ``python -m tests.warehouses._writer BLOCK_JSON MODE ROWS``; prints ``writing``
just before ``write`` starts and ``done`` after it returns.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def frame(rows: int, first_id: int = 0) -> pa.Table:
    ids = pa.array(np.arange(first_id, first_id + rows, dtype=np.int64))
    return pa.table(
        {
            "id": ids,
            "score": np.random.default_rng(first_id).random(rows),
            "label": pc.binary_join_element_wise("row-", pc.cast(ids, pa.string()), ""),
        }
    )


def main() -> None:
    from knot_prefect import DuckDBWarehouse, SqlWarehouse

    spec, mode, rows = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    kind = spec.pop("kind")
    warehouse = DuckDBWarehouse(**spec) if kind == "duckdb" else SqlWarehouse(**spec)
    data = frame(rows)
    print("writing", flush=True)
    warehouse.write(data, "victim", mode=mode, keys=["id"] if mode == "upsert" else None)
    print("done", flush=True)


if __name__ == "__main__":
    main()
