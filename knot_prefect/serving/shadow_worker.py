"""The shadow's own process: loads the shadow model, scores queued requests, writes rows.

:class:`~knot_prefect.serving.shadow.ShadowScorer` starts :func:`run_shadow` in a
child process (``spawn``: DuckDB and delta-rs do not survive a ``fork`` taken while
the service's threads run) at a lower CPU priority, so the model call, the lineage
rows and the warehouse writes never hold the serving process's interpreter and, on a
busy machine, the answers get the cores first. The service writes the requests it
gathered to a pipe every ``batch_seconds``, as concatenated pickles; the child takes
what has come (up to ``batch_requests``), scores it with one model call, and appends
the rows in batches (``flush_rows`` rows, or every ``flush_seconds``). It stops on the
service's stop marker, or by itself when the service's process is gone.

Examples:
    >>> rows = shadow_rows(
    ...     keys=[{"customer_id": 1}], primary=[{"prediction": 1, "probability": 0.8}],
    ...     shadow=[{"prediction": 0, "probability": 0.4}],
    ...     lineage={"model": "churn", "primary_alias": "champion", "primary_version": 3,
    ...              "shadow_alias": "challenger", "shadow_version": 4},
    ...     primary_ms=2.0, shadow_ms=3.0, scored_at="2026-01-01T00:00:00+00:00")
    >>> rows[0]["entity"], rows[0]["agree"], rows[0]["shadow_probability"]
    ('{"customer_id": 1}', False, 0.4)
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import queue
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knot_prefect.urls import mask_urls

if TYPE_CHECKING:
    from ctypes import Array, c_longlong
    from multiprocessing.connection import Connection
    from multiprocessing.queues import Queue

    from knot_prefect.serving.features import FeaturePlan
    from knot_prefect.serving.model_holder import ModelHolder

logger = logging.getLogger("knot_prefect.serving")

# The shadow table's columns (one row per shadowed entity).
SHADOW_COLUMNS: tuple[str, ...] = (
    "entity", "model_name", "primary_alias", "primary_version", "shadow_alias",
    "shadow_version", "primary_prediction", "shadow_prediction", "primary_probability",
    "shadow_probability", "agree", "primary_latency_ms", "shadow_latency_ms", "scored_at",
)

#: What the child counts, in the order of the shared counters.
CHILD_COUNTS: tuple[str, ...] = (
    "scored", "failed", "written", "write_errors", "lost", "batches", "settled", "taken",
)

# Retries of the last write when the service stops; the most batches kept unwritten.
_FINAL_TRIES = 5
_MAX_PENDING_BATCHES = 10
# How much lower than the service the child runs (os.nice increment).
NICENESS = 10

#: One queued request: entity keys, key columns, feature columns, the primary's answers,
#: its version, its scoring milliseconds, when it was scored (ISO text).
Request = tuple[list[dict[str, Any]], dict[str, list[Any]], dict[str, list[Any]],
                list[dict[str, Any]], int, float, str]


def unpickle_all(message: bytes) -> list[Any]:
    """The objects of concatenated pickles, in order (a pickle knows where it ends).

    Examples:
        >>> unpickle_all(pickle.dumps(1) + pickle.dumps([2, 3]))
        [1, [2, 3]]
    """
    stream = io.BytesIO(message)
    unpickler = pickle.Unpickler(stream)
    objects = []
    while stream.tell() < len(message):
        objects.append(unpickler.load())
    return objects


@dataclass(frozen=True)
class BlockCopy:
    """A block as its field values, to rebuild in another process.

    A block object holds locks and cached connections that cannot be pickled; its
    fields can, and rebuilding it validates them again.

    Examples:
        >>> from knot_prefect.blocks.warehouses.duckdb import DuckDBWarehouse
        >>> BlockCopy.of(DuckDBWarehouse(path=":memory:")).restore()
        DuckDBWarehouse(path=':memory:', turn_wait_seconds=0.0)
    """

    kind: type[Any]
    values: dict[str, Any]

    @classmethod
    def of(cls, block: Any) -> BlockCopy:
        return cls(type(block), block.model_dump())

    def restore(self) -> Any:
        return self.kind(**self.values)


@dataclass(frozen=True)
class ShadowTarget:
    """What the shadow's process scores and where it writes.

    Attributes:
        model: Registered model name.
        alias: The shadow alias (e.g. ``challenger``).
        primary_alias: The alias that answers, for the lineage.
        tracking: The MLflow tracking block of the registry.
        warehouse: The warehouse block the rows are appended to.
        table: The shadow table.
        offered: Input names the service's requests carry; a shadow model needing
            others is refused. None: not checked.
        refresh: Seconds between checks of where the shadow alias points.
    """

    model: str
    alias: str
    primary_alias: str
    tracking: BlockCopy
    warehouse: BlockCopy
    table: str
    offered: frozenset[str] | None = None
    refresh: float = 30.0


@dataclass(frozen=True)
class Batching:
    """How the child groups its work.

    Attributes:
        batch_seconds: How long the service gathers offered requests before it sends
            them to the child in one message; the child scores what it finds queued
            (up to ``batch_requests``) in one call.
        batch_requests: Most requests scored in one call.
        flush_rows: Rows written together.
        flush_seconds: Longest a scored row waits to be written.
    """

    batch_seconds: float = 0.25
    batch_requests: int = 2000
    flush_rows: int = 5000
    flush_seconds: float = 1.0


def shadow_rows(
    keys: Sequence[dict[str, Any]],
    primary: Sequence[dict[str, Any]],
    shadow: Sequence[dict[str, Any]],
    lineage: dict[str, Any],
    primary_ms: float,
    shadow_ms: float,
    scored_at: str,
) -> list[dict[str, Any]]:
    """One row per entity with both answers, side by side, and where they came from."""

    def number(value: Any) -> float | None:
        return None if value is None or isinstance(value, (list, dict)) else float(value)

    return [
        {
            "entity": json.dumps(entity, sort_keys=True, default=str),
            "model_name": lineage["model"],
            "primary_alias": lineage["primary_alias"],
            "primary_version": int(lineage["primary_version"]),
            "shadow_alias": lineage["shadow_alias"],
            "shadow_version": int(lineage["shadow_version"]),
            "primary_prediction": json.dumps(mine.get("prediction"), default=str),
            "shadow_prediction": json.dumps(theirs.get("prediction"), default=str),
            "primary_probability": number(mine.get("probability")),
            "shadow_probability": number(theirs.get("probability")),
            "agree": mine.get("prediction") == theirs.get("prediction"),
            "primary_latency_ms": primary_ms,
            "shadow_latency_ms": shadow_ms,
            "scored_at": scored_at,
        }
        for entity, mine, theirs in zip(keys, primary, shadow, strict=True)
    ]


def run_shadow(target: ShadowTarget, batching: Batching, requests: Connection,
               messages: Queue[tuple[str, Any]], counts: Array[c_longlong],
               parent: int) -> None:
    """The child process's body: load the shadow model, say ready, score until stopped.

    ``requests`` is the reading end of the service's pipe: each message is pickled
    :data:`Request` tuples, concatenated; an empty message is the stop marker.
    ``messages`` carries ``("ready", version)`` or ``("refused", text)`` once, then
    ``("error", text)`` for each failure; ``counts`` holds :data:`CHILD_COUNTS`.
    """
    os.nice(NICENESS)
    # Ctrl-C, or a stop sent to the whole process group (``kill -TERM -PGID``, as
    # service managers do), reaches the child too: it stops on the service's marker,
    # after writing what it holds, or when the service's end of the pipe closes; not
    # midway. The service's ``stop`` still ends it with SIGKILL if it hangs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from knot_prefect.errors import ConfigurationError

    try:
        holder = _open(target)
    except ConfigurationError as exc:
        messages.put(("refused", mask_urls(str(exc))))
        return
    except Exception as exc:
        messages.put(("refused", mask_urls(f"The shadow {target.model}@{target.alias} could "
                                           f"not be loaded: {type(exc).__name__}: {exc}")))
        return
    messages.put(("ready", holder.current.version))
    holder.start()
    try:
        _Loop(target, batching, holder, requests, messages, counts, parent).run()
    finally:
        holder.stop()


def _open(target: ShadowTarget) -> ModelHolder:
    from knot_prefect.errors import ConfigurationError
    from knot_prefect.serving.model_holder import ModelHolder

    holder = ModelHolder(target.model, target.alias, target.tracking.restore(),
                         _inputs_only, refresh=target.refresh)
    holder.refresh()
    lacking = [name for name in holder.current.inputs
               if target.offered is not None and name not in target.offered]
    if lacking:
        raise ConfigurationError(
            f"The shadow {target.model}@{target.alias} needs {lacking}, which the served "
            f"{target.model}@{target.primary_alias} does not read; shadow a model with "
            "the same inputs."
        )
    return holder


def _inputs_only(inputs: list[str]) -> FeaturePlan:
    """The shadow reads no features: it is fed the rows the primary model was fed."""
    from knot_prefect.serving.features import FeaturePlan

    return FeaturePlan(references=(), view_of={}, join_keys=(), view_versions={})


@dataclass
class _Loop:
    """Takes queued requests in batches, scores them, writes their rows in batches."""

    target: ShadowTarget
    batching: Batching
    holder: ModelHolder
    requests: Connection
    messages: Queue[tuple[str, Any]]
    counts: Array[c_longlong]
    parent: int

    def __post_init__(self) -> None:
        self.warehouse = self.target.warehouse.restore()

    def add(self, **counts: int) -> None:
        for name, count in counts.items():  # only this thread writes them
            self.counts[CHILD_COUNTS.index(name)] += count

    def error(self, text: str, message: str, *args: Any) -> None:
        text = mask_urls(text)  # once, for the log and for the service's stats alike
        logger.warning(message, *args, text)
        with contextlib.suppress(queue.Full):  # texts unread for long: the counts remain
            self.messages.put_nowait(("error", text))

    def run(self) -> None:
        flush_rows, flush_seconds = self.batching.flush_rows, self.batching.flush_seconds
        pending: list[dict[str, Any]] = []  # scored rows not written yet
        held = 0  # requests taken whose rows are not written yet
        oldest = 0.0  # when the oldest pending row was scored (or last failed to write)
        stopping = False
        while not stopping:
            wait = (flush_seconds if not pending
                    else max(0.0, oldest + flush_seconds - time.monotonic()))
            batch, stopping = self._take(wait)
            if batch:
                if not pending:
                    oldest = time.monotonic()
                rows = self._shadow(batch)
                if rows:
                    pending.extend(rows)
                    held += len(batch)
                else:  # failed: nothing to write for these requests
                    self.add(settled=len(batch))
            if stopping or len(pending) >= flush_rows or (
                    held and time.monotonic() - oldest >= flush_seconds):
                # A write that fails (e.g. the warehouse busy with the service's own
                # reads) is tried again with the next batch; at the end, a few times.
                tries = _FINAL_TRIES if stopping else 1
                while not self._flush(pending) and (tries := tries - 1):
                    time.sleep(flush_seconds)
                if pending and (stopping or len(pending) > _MAX_PENDING_BATCHES * flush_rows):
                    self.add(lost=len(pending))
                    pending.clear()
                if pending:
                    oldest = time.monotonic()
                else:
                    self.add(settled=held)
                    held = 0

    def _take(self, wait: float) -> tuple[list[Request], bool]:
        """The requests queued (up to ``batch_requests``), and whether to stop after them.

        Waits up to ``wait`` seconds for a first message of the service (the requests
        it gathered for ``batch_seconds``), then takes the messages already written
        behind it. Stops on the stop marker, or when the service's process is gone
        (the pipe's end, or a new parent: the stop marker can no longer come).
        """
        batch: list[Request] = []
        stopping = False
        try:
            if self.requests.poll(wait):
                while True:
                    message = self.requests.recv_bytes()
                    if not message:
                        stopping = True
                        break
                    batch.extend(unpickle_all(message))
                    if (len(batch) >= self.batching.batch_requests
                            or not self.requests.poll(0)):
                        break
        except (EOFError, OSError):  # the service's end closed: it is gone
            stopping = True
        if batch:
            self.add(taken=len(batch))
        return batch, stopping or os.getppid() != self.parent

    def _shadow(self, batch: list[Request]) -> list[dict[str, Any]]:
        """Score the batch's requests with one call; their rows, or none if it failed."""
        import pandas as pd

        from knot_prefect.serving.answers import score_frame

        try:
            served = self.holder.current
            frame = pd.DataFrame({
                name: [value for _, keys, features, *_ in batch
                       for value in (features[name] if name in features else keys[name])]
                for name in served.inputs})
            started = time.perf_counter()
            answers = score_frame(served, frame)
            shadow_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # a broken shadow never touches the answers
            self.add(failed=len(batch), batches=1)
            self.error(f"{type(exc).__name__}: {exc}",
                       "The shadow model could not score %d request(s): %s", len(batch))
            return []
        self.add(scored=len(batch), batches=1)
        rows: list[dict[str, Any]] = []
        offset = 0
        for keys, _, _, primary, version, primary_ms, scored_at in batch:
            lineage = {"model": served.name, "primary_alias": self.target.primary_alias,
                       "primary_version": version, "shadow_alias": served.alias,
                       "shadow_version": served.version}
            rows.extend(shadow_rows(keys, primary, answers[offset:offset + len(keys)],
                                    lineage, primary_ms, shadow_ms, scored_at))
            offset += len(keys)
        return rows

    def _flush(self, pending: list[dict[str, Any]]) -> bool:
        """Write the pending rows; True when written (or none), False to try again."""
        import pandas as pd

        if not pending:
            return True
        try:
            # Not waiting for the service's turn on a busy file: the service waits for
            # this process's (which runs at a lower priority), and this write is tried
            # again at the next flush.
            self.warehouse.write(pd.DataFrame(pending, columns=list(SHADOW_COLUMNS)),
                                 self.target.table, mode="append")
        except Exception as exc:  # the answers never depend on the shadow's table
            self.add(write_errors=1)
            self.error(f"{type(exc).__name__}: {exc}",
                       "Shadow scores could not be written (tried again later): %s")
            return False
        self.add(written=len(pending))
        pending.clear()
        return True


__all__ = ["CHILD_COUNTS", "SHADOW_COLUMNS", "Batching", "BlockCopy", "ShadowTarget", "run_shadow",
           "shadow_rows", "unpickle_all"]
