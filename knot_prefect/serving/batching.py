"""Requests that arrive together are scored together.

While one batch is being scored (in a worker thread), new requests queue up; the next
batch takes all of them. A lone request is scored alone at once, without waiting for
company, so batching adds no latency; under concurrent load it turns many online reads
and model calls into one of each. Each request is still checked on its own and gets
its own answer or error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knot_prefect.serving.service import PredictionService

_Item = tuple[Sequence[dict[str, Any]], "asyncio.Future[dict[str, Any]]"]


class RequestBatcher:
    """Collects concurrent ``/predict`` requests into batches for the service.

    Args:
        service: The prediction service.
        max_rows: Most entities scored in one batch; a request never waits for another
            batch because of it unless the current one is full.
    """

    def __init__(self, service: PredictionService, max_rows: int = 1000) -> None:
        self.service = service
        self.max_rows = max_rows
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None

    async def predict(self, keys: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Score one request's keys in the next batch.

        Raises:
            ServingError: This request's own error (404, 409, 422, 503).
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None:
            # Started lazily in the loop that serves (test clients may use several).
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue))
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._queue.put_nowait((keys, future))
        return await future

    async def stop(self) -> None:
        """Stop the batching task (queued requests are answered first)."""
        if self._task is not None and self._queue is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.01)
            self._task.cancel()
            self._task = None

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        from anyio import to_thread

        while True:
            batch = [await queue.get()]
            rows = len(batch[0][0])
            while not queue.empty() and rows < self.max_rows:
                item = queue.get_nowait()
                batch.append(item)
                rows += len(item[0])
            try:
                answers: list[Any] = await to_thread.run_sync(
                    self.service.predict_many, [keys for keys, _ in batch]
                )
            except Exception as exc:  # a failure of the whole batch reaches every request
                answers = [exc] * len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():
                    continue  # the client went away
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
