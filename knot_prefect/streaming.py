"""Streams of batches that hold only the batches in flight."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

Item = TypeVar("Item")


def chain_handed_on(head: list[Item], rest: Iterator[Item]) -> Iterator[Item]:
    """``head``'s items, then ``rest``'s; each of ``head`` is dropped as it is handed on.

    A caller that peeked at a stream's first batch (for its schema or key columns)
    passes it back in ``head`` and drops its own reference: the batch is then freed
    once its consumer is done with it, not held until the stream ends.

    Examples:
        >>> head = ["first"]
        >>> stream = chain_handed_on(head, iter(["second", "third"]))
        >>> next(stream), head
        ('first', [])
        >>> list(stream)
        ['second', 'third']
    """
    while head:
        yield head.pop(0)
    yield from rest
