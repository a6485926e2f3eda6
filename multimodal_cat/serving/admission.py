"""Admission control at the very front: a full service answers 503 before any work.

:class:`Door` counts the categorization requests inside the service (taken in, not yet
answered) and lets in at most ``capacity`` beyond those whose products are in the model. :class:`AdmissionMiddleware` is a plain ASGI middleware around the whole app: a
``POST`` to a categorization route that finds the door full is answered ``503`` with
``Retry-After`` at once, before routing, before the body is read or decoded, so an overloaded
service refuses in microseconds instead of after parsing what it will not categorize; an
admitted request yields once first, so a burst's refusals are not queued behind the parsing
of the requests let in with them. The
count also tells the micro-batcher whether anyone is on the way (a lone request then goes
without waiting out the batching window).

Example:
    >>> in_the_model = [0]
    >>> door = Door(capacity=2, exempt=lambda: in_the_model[0])
    >>> door.enter(), door.enter(), door.enter()
    (True, True, False)
    >>> in_the_model[0] = 1  # one of them reached the model: one more may wait
    >>> door.enter(), door.waiting
    (True, 2)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

ADMITTED_PATHS = frozenset({"/v1/categorize", "/predict"})


class Door:
    """How many categorization requests are inside: at most ``capacity`` waiting.

    Args:
        capacity: Most requests waiting at once (being read, queued for a batch).
        exempt: How many of those inside are not waiting (their products are in the model);
            default none.
    """

    def __init__(self, capacity: int, exempt: Callable[[], int] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"expected a capacity of at least 1; found {capacity}")
        self.capacity, self.exempt = capacity, exempt
        self.inside = 0

    @property
    def waiting(self) -> int:
        """Requests inside that are not in the model."""
        return self.inside - (self.exempt() if self.exempt is not None else 0)

    def enter(self) -> bool:
        """Take one request in; ``False`` (nothing counted) when the door is full."""
        if self.waiting >= self.capacity:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        """One request answered."""
        self.inside -= 1


class AdmissionMiddleware:
    """Refuse categorization requests with 503 at the front while the service's door is full.

    Reads the service from ``scope["app"].state.service`` (its ``door``, ``settings`` and
    ``metrics``); other routes pass straight through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ADMITTED_PATHS:
            await self.app(scope, receive, send)
            return
        service = scope["app"].state.service
        door: Door = service.door
        if not door.enter():
            await _refuse(service, door, send)
            return
        try:
            # requests that arrived together with this one are refused before its work starts
            await asyncio.sleep(0)
            await self.app(scope, receive, send)
        finally:
            door.leave()


async def _refuse(service: Any, door: Door, send: Send) -> None:
    detail = (
        f"the service is busy: the queue is full ({door.waiting} requests waiting, at most "
        f"{door.capacity}); try again shortly"
    )
    body = json.dumps({"detail": detail}).encode()
    service.metrics.errors.labels("503").inc()
    await send({
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(service.settings.retry_after_s).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
