"""Shadow scoring: a second model scores the same requests, off the response path.

``knot serve --shadow challenger`` follows a second alias of the served model. After a
request is answered, a sample of its rows (the model inputs exactly as the primary
model saw them) is put on a bounded queue to a process of the shadow's own
(:mod:`knot_prefect.serving.shadow_worker`), which loads the shadow model, scores the
queued requests in batches and appends both answers, with lineage and latencies, to a
warehouse table in batches. None of that work runs in the serving process: what a
request adds there is its lists pickled (a few microseconds) and appended, under a
lock, to the bytes gathered; a thread joins what was gathered and writes it to a pipe
to the shadow's process a few times a second, as one message. That thread holds the
interpreter lock only to join the bytes, and writes with it released: no pickling of a
whole batch at once, no queue feeder thread, and no system call per request, so the
requests being answered never wait long for the lock behind the shadow's hand-off. The
answer never waits for the shadow: a full queue (``queue_size`` requests sent or
gathered and not yet taken by the shadow), or a shadow process that is gone, drops the
sample (counted), and a shadow model that fails is logged and counted, never answered.

Examples:
    >>> stats = ShadowStats(offered=3, sampled=2, dropped=1)
    >>> stats.to_dict()["dropped"]
    1
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from knot_prefect.serving.shadow_worker import (
    CHILD_COUNTS,
    SHADOW_COLUMNS,
    Batching,
    BlockCopy,
    ShadowTarget,
    run_shadow,
    shadow_rows,
)
from knot_prefect.urls import mask_urls

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

logger = logging.getLogger("knot_prefect.serving")

# Most error texts of the shadow's process kept between two reads of ``stats``.
_MESSAGES = 100
#: Seconds a program exiting without ``stop`` gives its shadow to write what it holds.
EXIT_STOP_SECONDS = 10.0


@dataclass
class ShadowStats:
    """Counts of what the shadow did since the service started.

    ``dropped``: requests not queued (queue full, the shadow's process gone, or a
    value that cannot be pickled);
    ``failed``: requests the shadow model could not score; ``write_errors``: writes
    tried again later; ``lost``: rows given up on after repeated write errors;
    ``batches``: model calls.
    """

    offered: int = 0
    sampled: int = 0
    dropped: int = 0
    scored: int = 0
    failed: int = 0
    written: int = 0
    write_errors: int = 0
    lost: int = 0
    batches: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


class ShadowScorer:
    """Feeds sampled requests to the shadow's process and reports what it did.

    Args:
        target: The shadow model and table (see
            :class:`~knot_prefect.serving.shadow_worker.ShadowTarget`).
        sample: Fraction of requests shadowed (0 to 1).
        queue_size: Most requests waiting (gathered or sent, not yet taken by the
            shadow's process); more are dropped, never waited for.
        batching: How the shadow's process groups its model calls and writes.
        start_timeout: Longest :meth:`start` waits for the shadow model to load.
    """

    def __init__(
        self,
        target: ShadowTarget,
        sample: float = 1.0,
        queue_size: int = 1000,
        batching: Batching | None = None,
        start_timeout: float = 600.0,
    ) -> None:
        import multiprocessing

        if not 0 <= sample <= 1:
            raise ValueError(f"The shadow sample must be between 0 and 1, not {sample}.")
        self.target = target
        self.sample = sample
        self.batching = batching or Batching()
        self.start_timeout = start_timeout
        self.version: int | None = None  # the shadow version loaded at the start
        # spawn: DuckDB and delta-rs do not survive a fork taken while threads run.
        self._context = multiprocessing.get_context("spawn")
        self.queue_size = queue_size
        # Requests go to the shadow's process as pickles, concatenated, one message per
        # send; unbounded in bytes: ``offer`` bounds the requests waiting by the
        # shadow's "taken" count. An empty message is the stop marker.
        self._reader: Any = None
        self._writer: Any = None
        # Bounded: error texts wait here until ``stats`` is read; the counts never drop.
        self._messages: Any = self._context.Queue(maxsize=_MESSAGES)
        # Written by the shadow's process alone, read here without a lock: a process
        # killed while holding one would stop the readers too.
        self._counts: Any = self._context.RawArray("q", len(CHILD_COUNTS))
        self._mine = {"offered": 0, "sampled": 0, "dropped": 0}
        self._lock = threading.Lock()
        self._gathered: list[bytes] = []  # offered since the last send, pickled
        self._alive = False  # the shadow's process runs (the sender thread checks)
        self._stop_sending = threading.Event()
        self._sender: threading.Thread | None = None
        self._last_error: str | None = None
        self._random = random.Random()
        self._process: SpawnProcess | None = None

    @property
    def pid(self) -> int | None:
        """The shadow process's id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def stats(self) -> ShadowStats:
        """What the shadow did so far (the service's counts and its process's)."""
        while True:
            try:
                _, text = self._messages.get_nowait()
            except (queue.Empty, OSError, ValueError):
                break
            self._last_error = text
        child = dict(zip(CHILD_COUNTS, self._counts[:], strict=True))
        child.pop("settled")
        child.pop("taken")
        with self._lock:
            return ShadowStats(**self._mine, **child, last_error=self._last_error)

    def report(self) -> dict[str, Any]:
        """The shadow model followed and its :attr:`stats`, as ``GET /shadow`` answers.

        ``offered``, ``sampled``, ``dropped``, ``scored`` and ``failed`` count requests;
        ``written`` and ``lost`` count rows (entities). A connection URL in the last
        error is masked where the error is recorded.
        """
        stats = self.stats.to_dict()
        return {"model": self.target.model, "alias": self.target.alias,
                "version": self.version, "table": self.target.table, "sample": self.sample,
                "queue_size": self.queue_size, **stats}

    def _count(self, name: str) -> None:
        with self._lock:
            self._mine[name] += 1

    def offer(
        self,
        keys: Sequence[dict[str, Any]],
        columns: dict[str, list[Any]],
        features: dict[str, list[Any]],
        primary: Sequence[dict[str, Any]],
        primary_version: int,
        primary_ms: float,
        scored_at: str,
    ) -> bool:
        """Queue a scored request for the shadow, without waiting; True when queued.

        ``columns`` (the entity keys) and ``features`` are the model inputs by name,
        as the primary model was fed them; they are kept as they are, not copied.
        """
        # No system call here (a liveness check would be one): each lets the other
        # threads of the service take the interpreter lock while a request waits.
        taken = self._counts[CHILD_COUNTS.index("taken")]
        with self._lock:
            self._mine["offered"] += 1
            if self.sample < 1 and self._random.random() >= self.sample:
                return False
            if not self._alive or self._mine["sampled"] - taken >= self.queue_size:
                self._mine["dropped"] += 1  # full, or the process gone
                return False
            # Pickled here, a few microseconds a request, rather than a whole batch at
            # a time in one call that keeps the answering threads from the interpreter.
            try:
                message = pickle.dumps(
                    (keys, columns, features, primary, primary_version, primary_ms,
                     scored_at), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # a value that cannot travel: never the answer's fault
                self._mine["dropped"] += 1
                self._last_error = mask_urls(f"{type(exc).__name__}: {exc}")
                return False
            self._gathered.append(message)
            self._mine["sampled"] += 1
        return True

    def _send(self, process: SpawnProcess) -> None:
        """The sender thread: hand what was gathered to the shadow's process, in one
        message every ``batch_seconds``, until stopped (then once more, and the stop
        marker). A write waits while the shadow's pipe is full, without the
        interpreter lock; ``offer`` keeps gathering, up to ``queue_size``."""
        running = True
        while running:
            running = not self._stop_sending.wait(self.batching.batch_seconds)
            with self._lock:
                # Reaped and marked gone under the lock: an offer that follows drops.
                self._alive = self._alive and process.is_alive()
                gathered, self._gathered = self._gathered, []
            if gathered and not self._write(b"".join(gathered)):
                break
        if not running:
            self._write(b"")  # the stop marker
        with self._lock:
            self._alive = False

    def _write(self, message: bytes) -> bool:
        """Write one message to the shadow's process; False when it is gone."""
        try:
            self._writer.send_bytes(message)
        except (OSError, ValueError):  # the shadow's process gone, or the pipe closed
            with self._lock:
                self._alive = False
            return False
        return True

    def start(self) -> None:
        """Start the shadow's process and wait until its model is loaded.

        Raises:
            ConfigurationError: The shadow alias cannot be loaded, or its model needs
                inputs the served model's requests do not carry.
        """
        from knot_prefect.errors import ConfigurationError

        if self._process is not None:
            return
        self._reader, self._writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=run_shadow, name="knot-shadow", daemon=True,
            args=(self.target, self.batching, self._reader, self._messages, self._counts,
                  os.getpid()))
        process.start()
        # The shadow's process holds the reading end alone: a write to a process that
        # is gone fails at once rather than filling a pipe nobody reads.
        self._reader.close()
        self._process = process
        self._alive = True
        self._stop_sending.clear()
        self._sender = threading.Thread(target=self._send, args=(process,),
                                        name="knot-shadow-sender", daemon=True)
        self._sender.start()
        atexit.register(self._stop_at_exit)
        try:
            kind, value = self._messages.get(timeout=self.start_timeout)
        except queue.Empty:
            self.stop(timeout=0)
            raise ConfigurationError(
                f"The shadow {self.target.model}@{self.target.alias} did not load within "
                f"{self.start_timeout:.0f} s.") from None
        if kind != "ready":
            self.stop(timeout=0)
            raise ConfigurationError(value)
        self.version = int(value)

    def _stop_at_exit(self) -> None:
        # A program that exits without ``stop``: multiprocessing's own exit handler would
        # send the daemonic shadow a SIGTERM, which it ignores, and wait for it for ever.
        # Registered after that handler, this one runs first (atexit is last in, first out).
        self.stop(timeout=EXIT_STOP_SECONDS)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the shadow's process score and write what is queued, then end it."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self._stop_at_exit)
        self._stop_sending.set()  # the sender sends what is gathered and the stop marker
        sender, self._sender = self._sender, None
        deadline = time.monotonic() + timeout
        if sender is not None:
            sender.join(timeout)
        process.join(max(deadline - time.monotonic(), 0.0))
        if process.is_alive():  # it ignores SIGTERM, which a service manager sends the group
            process.kill()
            process.join()
        if sender is not None:
            sender.join()  # a write to the ended process fails: the sender ends
        self._writer.close()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is scored and written; False on timeout."""
        deadline = time.monotonic() + timeout
        settled = CHILD_COUNTS.index("settled")
        while self._counts[settled] < self._mine["sampled"]:
            if time.monotonic() > deadline or (
                    self._process is not None and not self._process.is_alive()):
                return False
            time.sleep(0.01)
        return True


__all__ = ["SHADOW_COLUMNS", "Batching", "BlockCopy", "ShadowScorer", "ShadowStats", "ShadowTarget",
           "shadow_rows"]
