"""What one running service holds: the model (loaded once), the image loader, the batcher.

:meth:`Service.categorize` takes checked request records and answers one feed output row per
product (:mod:`multimodal_cat.feeds.rows`, the same step as the feed job): images load within
the request's deadline, then the products join the micro-batch queue.

Example:
    >>> from multimodal_cat.feeds.rows import OutputRows
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> service = Service(lambda: Engine(OutputRows(DryRunPredictor()), None, "dry-run"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.memory import release_freed_memory
from multimodal_cat.feeds.rows import OutputRows, RowItem, attach_image, photo_loader, start_item
from multimodal_cat.serving.admission import Door
from multimodal_cat.serving.batcher import DeadlineError, MicroBatcher, QueueFullError
from multimodal_cat.serving.inputs import products_from_records
from multimodal_cat.serving.limits import RequestError
from multimodal_cat.serving.metrics import ServiceMetrics
from multimodal_cat.serving.settings import ServeSettings

logger = logging.getLogger("multimodal_cat.serving")
TRIM_EVERY_PRODUCTS = 1024  # hand freed heap pages back to the OS this often (see feeds.memory)


@dataclass
class Engine:
    """The loaded model side of a service.

    Attributes:
        rows: The per-batch step (predictor, mapper, router) that makes output rows.
        taxonomy: The tree predicted in (the Label Studio backend reads its paths).
        version: A name for the model, reported by ``/readyz`` and to Label Studio.
    """

    rows: OutputRows
    taxonomy: Any
    version: str


class Service:
    """The state behind the HTTP routes.

    Args:
        load: Builds the :class:`Engine` (runs once, in a thread, when the app starts).
        settings: Batching and limits.
        images: The image loader (its URL rules, timeout, byte and pixel caps); default: a
            loader with the feed job's rules, no retries and a 5 s download deadline.
        catalog: Loads ``(catalog index, its encoders)`` for ``/v1/similar`` (runs once, after
            the model); ``None``: no index.
    """

    def __init__(
        self,
        load: Callable[[], Engine],
        settings: ServeSettings | None = None,
        images: ImageLoader | None = None,
        catalog: Callable[[], tuple[Any, Any]] | None = None,
    ) -> None:
        self.load_engine = load
        self.load_catalog = catalog
        self.catalog: tuple[Any, Any] | None = None
        self.settings = settings or ServeSettings()
        self.images = images or ImageLoader(None, timeout=5.0, retries=0, workers=16)
        self.metrics = ServiceMetrics()
        self.engine: Engine | None = None
        self.load_error: str | None = None
        self.started = time.monotonic()
        self.ready_s: float | None = None
        # at most a full queue of requests waiting, besides those in the model
        self.door = Door(self.settings.max_queue, exempt=lambda: self.batcher.running)
        self.batcher: MicroBatcher[RowItem, dict[str, Any]] = MicroBatcher(
            self._process,
            max_batch=self.settings.max_batch,
            window_ms=self.settings.window_ms,
            max_queue=self.settings.max_queue,
            on_batch=self.metrics.batch_size.observe,
            arriving=lambda: self.door.inside - self.batcher.callers,
        )
        self.metrics.track_queue(lambda: self.batcher.depth)
        self._untrimmed = 0  # products predicted since freed memory was last handed back
        self._loading: asyncio.Task[None] | None = None
        self.on_load_error: Callable[[], None] | None = None  # e.g. stop the server

    async def start(self) -> None:
        """Start the batcher and load the model in the background (``/readyz`` tells when)."""
        self.started = time.monotonic()
        await self.batcher.start()
        self._loading = asyncio.create_task(self._load())

    async def stop(self) -> None:
        """Finish queued products, then stop the batcher and the image threads."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        await self.batcher.stop()
        self.images.close()

    async def _load(self) -> None:
        try:
            self.engine = await asyncio.to_thread(self.load_engine)
            if self.load_catalog is not None:
                self.catalog = await asyncio.to_thread(self.load_catalog)
        except Exception as error:  # reported by /readyz; /healthz stays up
            self.load_error = f"{type(error).__name__}: {error}"
            logger.error("the model could not be loaded: %s", self.load_error)
            if self.on_load_error is not None:
                self.on_load_error()
            return
        self.ready_s = time.monotonic() - self.started
        self.metrics.ready.set(1)
        logger.info("model %s ready after %.1f s", self.engine.version, self.ready_s)

    def require_engine(self) -> Engine:
        """The engine, or a 503 while it loads (500 when it failed to load)."""
        if self.engine is not None:
            return self.engine
        if self.load_error:
            raise RequestError(500, f"the model could not be loaded: {self.load_error}")
        raise RequestError(
            503, "the model is still loading; try again shortly",
            {"Retry-After": str(self.settings.retry_after_s)},
        )

    async def categorize(
        self, records: list[dict[str, Any]], *, on_image_error: str | None = None
    ) -> list[tuple[RowItem, dict[str, Any]]]:
        """Categorize checked records: each product's item (with its prediction) and its
        output row, in order.

        Raises:
            RequestError: 422 (an image cannot be used, in ``reject`` mode), 503 (queue full,
                model loading) or 504 (past the request's deadline).
        """
        self.require_engine()
        timeout = self.settings.request_timeout
        try:
            return await asyncio.wait_for(
                self._categorize(records, on_image_error or self.settings.on_image_error, timeout),
                timeout,
            )
        except (asyncio.TimeoutError, DeadlineError):
            raise RequestError(
                504, f"the request took longer than the {timeout:g} s allowed"
            ) from None
        except QueueFullError as error:
            raise RequestError(
                503, f"the service is busy: {error}; try again shortly",
                {"Retry-After": str(self.settings.retry_after_s)},
            ) from None

    async def _categorize(
        self, records: list[dict[str, Any]], mode: str, timeout: float
    ) -> list[tuple[RowItem, dict[str, Any]]]:
        start = time.monotonic()
        products = products_from_records(records)
        images = photo_loader(self.require_engine().rows.predictor, self.images)
        items = [start_item(RowItem(n), p, images) for n, p in enumerate(products, start=1)]
        for item in items:
            if item.future is None:
                continue
            image, warning = await asyncio.wrap_future(item.future)
            item.future = None
            if warning is not None and mode == "reject":
                raise RequestError(
                    422, f"product {item.number}: {warning} (send ?on_image_error=degrade to "
                    "categorize from the text instead)",
                )
            attach_image(item, image, warning)
        left = timeout - (time.monotonic() - start)
        rows = await self.batcher.submit(items, timeout=left)
        for row in rows:
            self.metrics.products.labels(row["status"]).inc()
        return list(zip(items, rows, strict=True))

    def _process(self, items: list[RowItem]) -> list[dict[str, Any]]:
        """One batch's rows (in the batcher's worker thread). Every ``TRIM_EVERY_PRODUCTS``
        products, the heap pages the encoders freed go back to the OS, as in the feed job:
        without it the resident memory of a long-running service creeps up."""
        assert self.engine is not None
        rows = self.engine.rows(items)
        self._untrimmed += len(items)
        if self._untrimmed >= TRIM_EVERY_PRODUCTS:
            self._untrimmed = 0
            release_freed_memory()
        return rows
