"""Warehouse calls that wait their turn on a file another process holds."""

from __future__ import annotations

import pytest

from knot_prefect.blocks.warehouses.base import ConcurrentWriteError
from knot_prefect.serving.turns import waiting_for_turn


def _busy_then(result: str, busy_times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= busy_times:
            raise ConcurrentWriteError("The DuckDB file is open in another process")
        return result

    return calls, call


def test_a_busy_file_is_tried_again_until_the_other_turn_ends() -> None:
    calls, call = _busy_then("rows", busy_times=3)
    assert waiting_for_turn(call, wait=5.0) == "rows"  # type: ignore[arg-type]
    assert len(calls) == 4


def test_a_file_busy_for_longer_than_the_wait_raises_the_conflict() -> None:
    calls, call = _busy_then("rows", busy_times=10**9)
    with pytest.raises(ConcurrentWriteError, match="another process"):
        waiting_for_turn(call, wait=0.05)  # type: ignore[arg-type]
    assert len(calls) > 1


def test_any_other_error_is_raised_at_once() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("no such column: x")

    with pytest.raises(ValueError, match="no such column"):
        waiting_for_turn(call, wait=5.0)
    assert calls == [1]
