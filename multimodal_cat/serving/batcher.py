"""Micro-batching: gather concurrent requests' products into one predictor call.

Requests put their products on a bounded queue and wait. One loop takes the first product
and whatever else is queued, keeps collecting for at most ``window_ms`` (or until
``max_batch`` products) while other callers are on their way (``arriving``: requests taken in
but not yet queued), then runs the batch in a worker thread, so the event loop keeps
answering while the model works. While a batch runs, new products queue up and form the next
batch, so under load batches fill by themselves; a lone request, with nobody on the way, goes
at once, and never waits more than the window. A full queue refuses new products at
once (:class:`QueueFullError`, the service's 503 with ``Retry-After``) instead of growing,
and products whose deadline passed while queued are dropped before they reach the model.

Example:
    >>> import asyncio
    >>> async def demo():
    ...     batcher = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=8, window_ms=2)
    ...     await batcher.start()
    ...     try:
    ...         return await asyncio.gather(batcher.submit([1, 2]), batcher.submit([3]))
    ...     finally:
    ...         await batcher.stop()
    >>> asyncio.run(demo())
    [[2, 4], [6]]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from multimodal_cat.errors import MultimodalCatError

T = TypeVar("T")
R = TypeVar("R")


class QueueFullError(MultimodalCatError, RuntimeError):
    """The batch queue is full (or the service is shutting down): try again shortly."""


class DeadlineError(MultimodalCatError, TimeoutError):
    """A product's deadline passed before the model could take it."""


@dataclass
class _Waiting:
    item: Any
    future: asyncio.Future[Any]
    deadline: float


class MicroBatcher(Generic[T, R]):
    """Run ``process`` over batches of items submitted by concurrent callers.

    Args:
        process: Maps a list of items to a list of results (same length, same order); runs
            in one worker thread, one batch at a time.
        max_batch: Most items per ``process`` call (1: no batching).
        window_ms: How long the first item of a batch waits for company.
        max_queue: Most items waiting; beyond it :meth:`submit` raises
            :class:`QueueFullError`.
        on_batch: Called with each batch's size (metrics).
        arriving: How many more callers are on their way to :meth:`submit` (e.g. requests
            still being read); the window is waited out only while this is above 0.
            ``None``: unknown, so every batch waits out its window.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        window_ms: float = 5.0,
        max_queue: int = 256,
        on_batch: Callable[[int], None] | None = None,
        arriving: Callable[[], int] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or window_ms < 0:
            raise ValueError(
                f"expected max_batch >= 1, max_queue >= 1 and window_ms >= 0; found "
                f"{max_batch}, {max_queue} and {window_ms}"
            )
        self.process, self.on_batch, self.arriving = process, on_batch, arriving
        self.callers = 0  # submit() calls waiting for their results
        self.running = 0  # items in the batch the model is working on
        self.max_batch, self.window, self.max_queue = max_batch, window_ms / 1000, max_queue
        self._queue: asyncio.Queue[_Waiting | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Items waiting for a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the batching loop (call from the running event loop)."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="predict")
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Refuse new items, finish every queued one, then stop the loop and its thread."""
        if self._task is None or self._queue is None:
            return
        self._closing = True
        self._queue.put_nowait(None)
        await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, items: Sequence[T], *, timeout: float | None = None) -> list[R]:
        """Queue ``items`` and wait for their results, in order.

        Raises:
            QueueFullError: The queue cannot take ``len(items)`` more, or the batcher stops.
            DeadlineError: ``timeout`` seconds passed before the model took an item.
            Exception: Whatever ``process`` raised for the batch.
        """
        if self._queue is None or self._closing:
            raise QueueFullError("the service is shutting down")
        if self.depth + len(items) > self.max_queue:
            raise QueueFullError(
                f"the queue is full ({self.depth} products waiting, at most {self.max_queue})"
            )
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        waiting = [_Waiting(item, loop.create_future(), deadline) for item in items]
        for entry in waiting:
            self._queue.put_nowait(entry)
        self.callers += 1
        try:
            results = await asyncio.gather(*(w.future for w in waiting), return_exceptions=True)
        finally:
            self.callers -= 1
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return list(results)

    async def _run(self) -> None:
        assert self._queue is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, stopping = await self._collect(first)
            await self._run_batch(batch)
        # stop() is called after new items are refused: nothing remains behind the sentinel.

    async def _collect(self, first: _Waiting) -> tuple[list[_Waiting], bool]:
        """The first item, whatever is queued behind it, and whatever joins within the window
        while callers are on their way (up to ``max_batch``)."""
        assert self._queue is not None
        batch, end = [first], time.monotonic() + self.window
        while len(batch) < self.max_batch:
            if self._queue.empty():
                left = end - time.monotonic()
                if left <= 0 or not self._expecting():
                    break
                try:
                    entry = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                entry = self._queue.get_nowait()
            if entry is None:
                return batch, True
            batch.append(entry)
        return batch, False

    def _expecting(self) -> bool:
        """Whether anyone may still join: callers on their way (unknown counts as yes)."""
        return self.arriving is None or self.arriving() > 0

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        now = time.monotonic()
        live = []
        for entry in batch:
            if entry.future.done():  # the caller gave up (timed out or disconnected)
                continue
            if entry.deadline <= now:
                entry.future.set_exception(DeadlineError("the deadline passed while queued"))
                continue
            live.append(entry)
        if not live:
            return
        if self.on_batch is not None:
            self.on_batch(len(live))
        loop = asyncio.get_running_loop()
        self.running = len(live)
        try:
            results = await loop.run_in_executor(
                self._executor, self.process, [e.item for e in live]
            )
            if len(results) != len(live):
                raise RuntimeError(f"process returned {len(results)} results for {len(live)} items")
        except Exception as error:  # the batch's callers each get the error; the loop goes on
            for entry in live:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        finally:
            self.running = 0
        for entry, result in zip(live, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)
