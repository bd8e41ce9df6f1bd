"""Shadow scoring: a second model scores the same requests, off the response path.

``knot serve --shadow challenger`` follows a second alias of the served model. After a
request is answered, a sample of its rows (the model inputs exactly as the primary
model saw them) is put on a bounded queue; a background thread takes what has queued
every ``batch_seconds``, scores it with one call of the shadow model and appends both
answers, with lineage and latencies, to a warehouse table in batches. Scoring queued
requests together keeps the shadow's share of the process (and of its interpreter
lock) small, so the answers do not slow down; between batches the thread sleeps,
leaving the interpreter to the answers. The answer never waits for the shadow: a full
queue drops the sample (counted), and a shadow model that fails is logged and counted,
never answered.

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

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from knot_prefect.serving.model_holder import ModelHolder

logger = logging.getLogger("knot_prefect.serving")

# The shadow table's columns (one row per shadowed entity).
SHADOW_COLUMNS: tuple[str, ...] = (
    "entity", "model_name", "primary_alias", "primary_version", "shadow_alias",
    "shadow_version", "primary_prediction", "shadow_prediction", "primary_probability",
    "shadow_probability", "agree", "primary_latency_ms", "shadow_latency_ms", "scored_at",
)


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


@dataclass
class ShadowStats:
    """Counts of what the shadow did since the service started.

    ``dropped``: requests not queued (queue full); ``failed``: requests the shadow model
    could not score; ``write_errors``: writes tried again later; ``lost``: rows given up
    on after repeated write errors.
    """

    offered: int = 0
    sampled: int = 0
    dropped: int = 0
    scored: int = 0
    failed: int = 0
    written: int = 0
    write_errors: int = 0
    lost: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in
                ("offered", "sampled", "dropped", "scored", "failed", "written",
                 "write_errors", "lost", "last_error")}


@dataclass(frozen=True)
class _Sample:
    keys: list[dict[str, Any]]
    inputs: dict[str, list[Any]]
    primary: list[dict[str, Any]]
    primary_version: int
    primary_ms: float
    scored_at: str


class ShadowScorer:
    """Scores sampled requests with the shadow alias's model in a background thread.

    Args:
        holder: Follows the shadow alias (e.g. ``challenger``) of the served model.
        primary_alias: The alias that answers (e.g. ``champion``), for the lineage.
        score: Scores a frame of model inputs with a served model; the service's own
            scoring, so both answers have the same shape.
        write: Appends a frame of :data:`SHADOW_COLUMNS` rows to the shadow table.
        sample: Fraction of requests shadowed (0 to 1).
        queue_size: Most requests waiting; more are dropped, never waited for.
        flush_rows: Rows written together.
        flush_seconds: Longest a scored row waits to be written.
        batch_seconds: How long the thread lets requests queue before it takes them
            (all of them, up to ``batch_requests``) and scores them in one call.
        batch_requests: Most requests scored in one call.
    """

    def __init__(
        self,
        holder: ModelHolder,
        primary_alias: str,
        score: Callable[[Any, pd.DataFrame], list[dict[str, Any]]],
        write: Callable[[pd.DataFrame], None],
        sample: float = 1.0,
        queue_size: int = 1000,
        flush_rows: int = 500,
        flush_seconds: float = 1.0,
        batch_seconds: float = 0.1,
        batch_requests: int = 500,
    ) -> None:
        if not 0 <= sample <= 1:
            raise ValueError(f"The shadow sample must be between 0 and 1, not {sample}.")
        self.holder = holder
        self.primary_alias = primary_alias
        self.sample = sample
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.batch_seconds = batch_seconds
        self.batch_requests = batch_requests
        self.stats = ShadowStats()
        self._score = score
        self._write = write
        self._queue: queue.Queue[_Sample | None] = queue.Queue(maxsize=queue_size)
        self._random = random.Random()
        self._thread: threading.Thread | None = None

    def offer(
        self,
        keys: Sequence[dict[str, Any]],
        inputs: dict[str, list[Any]],
        primary: Sequence[dict[str, Any]],
        primary_version: int,
        primary_ms: float,
        scored_at: str,
    ) -> bool:
        """Queue a scored request for the shadow, without waiting; True when queued."""
        self.stats.add(offered=1)
        if self.sample < 1 and self._random.random() >= self.sample:
            return False
        try:
            self._queue.put_nowait(_Sample(list(keys), inputs, list(primary),
                                           primary_version, primary_ms, scored_at))
        except queue.Full:
            self.stats.add(dropped=1)
            return False
        self.stats.add(sampled=1)
        return True

    def start(self) -> None:
        """Start the shadow's thread (and its holder's following of the alias)."""
        if self._thread is None:
            self.holder.start()
            self._thread = threading.Thread(target=self._run, name="knot-shadow",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Score and write what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        self.holder.stop()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is scored and written; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        pending: list[dict[str, Any]] = []  # scored rows not written yet
        held = 0  # queue items taken whose rows are not written yet
        oldest = 0.0  # when the oldest pending row was scored (or last failed to write)
        stopping = False
        while not stopping:
            wait = (self.flush_seconds if not pending
                    else max(0.0, oldest + self.flush_seconds - time.monotonic()))
            batch, stopping = self._take(wait)
            if batch:
                if not pending:
                    oldest = time.monotonic()
                pending.extend(self._shadow(batch))
                held += len(batch)
            # Rows are written in batches: enough of them, or the oldest waited enough.
            if stopping or len(pending) >= self.flush_rows or (
                    held and time.monotonic() - oldest >= self.flush_seconds):
                # A write that fails (e.g. the warehouse busy with the service's own
                # reads) is tried again with the next batch; at the end, a few times.
                tries = _FINAL_TRIES if stopping else 1
                while not self._flush(pending) and (tries := tries - 1):
                    time.sleep(self.flush_seconds)
                if pending and (stopping or len(pending) > _MAX_PENDING_BATCHES
                                * self.flush_rows):
                    self.stats.add(lost=len(pending))
                    pending.clear()
                if pending:
                    oldest = time.monotonic()
                else:
                    for _ in range(held):
                        self._queue.task_done()
                    held = 0
        self._queue.task_done()  # the stop marker

    def _take(self, wait: float) -> tuple[list[_Sample], bool]:
        """The requests queued (up to ``batch_requests``), and whether to stop after them.

        Waits up to ``wait`` seconds for a first request, then ``batch_seconds`` more:
        the answers have the interpreter meanwhile, and the requests arriving then are
        scored with it in one call.
        """
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        time.sleep(self.batch_seconds)
        batch = [first]
        while len(batch) < self.batch_requests:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _shadow(self, batch: list[_Sample]) -> list[dict[str, Any]]:
        """Score the batch's requests with one call; their rows, or none if it failed."""
        import pandas as pd

        try:
            served = self.holder.current
            frame = pd.DataFrame({name: [value for item in batch for value in item.inputs[name]]
                                  for name in served.inputs})
            started = time.perf_counter()
            answers = self._score(served, frame)
            shadow_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # a broken shadow never touches the answers
            self.stats.add(failed=len(batch))
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("The shadow model could not score %d request(s): %s",
                           len(batch), self.stats.last_error)
            return []
        self.stats.add(scored=len(batch))
        rows: list[dict[str, Any]] = []
        offset = 0
        for item in batch:
            lineage = {"model": served.name, "primary_alias": self.primary_alias,
                       "primary_version": item.primary_version, "shadow_alias": served.alias,
                       "shadow_version": served.version}
            rows.extend(shadow_rows(item.keys, item.primary,
                                    answers[offset:offset + len(item.keys)], lineage,
                                    item.primary_ms, shadow_ms, item.scored_at))
            offset += len(item.keys)
        return rows

    def _flush(self, pending: list[dict[str, Any]]) -> bool:
        """Write the pending rows; True when written (or none), False to try again."""
        import pandas as pd

        if not pending:
            return True
        try:
            self._write(pd.DataFrame(pending, columns=list(SHADOW_COLUMNS)))
        except Exception as exc:  # the answers never depend on the shadow's table
            self.stats.add(write_errors=1)
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("Shadow scores could not be written (tried again later): %s",
                           self.stats.last_error)
            return False
        self.stats.add(written=len(pending))
        pending.clear()
        return True


# Retries of the last write when the service stops; the most batches kept unwritten.
_FINAL_TRIES = 5
_MAX_PENDING_BATCHES = 10


__all__ = ["SHADOW_COLUMNS", "ShadowScorer", "ShadowStats", "shadow_rows"]
