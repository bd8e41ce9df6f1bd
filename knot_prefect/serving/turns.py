"""Feature reads of the service that wait their turn on a busy warehouse file.

A DuckDB file is open in one process at a time (knot's processes take turns on it).
The service reads features from it on every request while its shadow's process appends
scores to it, so a read meets the shadow's turn now and then. A turn lasts milliseconds
on an idle machine, but the shadow runs at a lower priority, so on a busy one it can
last seconds: the read waits for it rather than failing the request. (The shadow does
not wait for the service: a write that meets its turn is tried again at the next flush.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")

#: How long a call waits for another process's turn on the file before it fails.
TURN_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.005


def waiting_for_turn(call: Callable[[], Result], wait: float = TURN_WAIT_SECONDS) -> Result:
    """``call()``, tried again while another process holds the warehouse file.

    Args:
        call: The warehouse read or write.
        wait: Seconds to keep trying; the last ``ConcurrentWriteError`` is raised after.

    Returns:
        What ``call`` returned.

    Examples:
        >>> waiting_for_turn(lambda: 42)
        42
    """
    from knot_prefect.blocks.warehouses.base import ConcurrentWriteError

    deadline = time.monotonic() + wait
    while True:
        try:
            return call()
        except ConcurrentWriteError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)
