"""Calls that wait their turn on a warehouse file another process holds.

A DuckDB file is open in one process at a time (knot's processes take turns on it). A
turn lasts milliseconds on an idle machine, but a process at a lower priority on a busy
one can hold it for seconds. ``DuckDBWarehouse(turn_wait_seconds=...)`` waits so long
for the other process's turn before it fails with ``ConcurrentWriteError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from knot_prefect.blocks.warehouses.base import ConcurrentWriteError

Result = TypeVar("Result")

_POLL_SECONDS = 0.005


def waiting_for_turn(call: Callable[[], Result], wait: float) -> Result:
    """``call()``, tried again while another process holds the warehouse file.

    Args:
        call: What takes the turn (opening the file); it raises ``ConcurrentWriteError``
            while another process holds it, having taken nothing.
        wait: Seconds to keep trying; the last ``ConcurrentWriteError`` is raised after.
            0 tries once.

    Returns:
        What ``call`` returned.

    Examples:
        >>> waiting_for_turn(lambda: 42, wait=0)
        42
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return call()
        except ConcurrentWriteError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)
