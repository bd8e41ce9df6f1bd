"""A writer process for the kill contract: it writes, then pauses before its commit.

Run as ``python -m tests.warehouses._writer SPEC MODE TABLE ROWS PAUSE``, where SPEC
is ``{"class": "<knot block class>", "config": {...}}`` and PAUSE is
``module:function:after`` or ``module:function:before``: the block's own step of
that name runs unchanged, and the process prints ``paused`` and sleeps just after
(or before) it, so that the test kills it at a known point inside the write (rows
written, nothing committed). It prints ``done`` if the write ever returns.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import time
from typing import Any

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


def pause_at(target: str) -> None:
    """Make ``module:function`` print ``paused`` and sleep after (or before) it runs."""
    module_name, function_name, when = target.split(":")
    module = importlib.import_module(module_name)
    step = getattr(module, function_name)

    def pause() -> None:
        print("paused", flush=True)
        time.sleep(600)

    @functools.wraps(step)
    def paused_step(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            pause()
        result = step(*args, **kwargs)
        pause()
        return result

    setattr(module, function_name, paused_step)


def main() -> None:
    import knot_prefect

    spec, mode, table = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows, pause = int(sys.argv[4]), sys.argv[5]
    warehouse = getattr(knot_prefect, spec["class"]).model_validate(spec["config"])
    pause_at(pause)
    warehouse.write(frame(rows), table, mode=mode, keys=["id"] if mode == "upsert" else None)
    print("done", flush=True)


if __name__ == "__main__":
    main()
