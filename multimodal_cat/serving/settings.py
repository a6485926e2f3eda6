"""The service's settings: batching, limits, API key, what to do with an unusable image.

Example:
    >>> ServeSettings(max_batch=16).max_batch
    16
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ON_IMAGE_ERROR = ("reject", "degrade")


@dataclass(frozen=True)
class ServeSettings:
    """How the service batches and what it accepts.

    Attributes:
        max_batch: Most products per predictor call (1: no micro-batching).
        window_ms: How long a product waits for others to join its batch, while other
            requests are on their way (a lone request goes at once).
        max_queue: Most products waiting; more are answered 503 with ``Retry-After``, as are
            requests beyond ``max_queue`` waiting (refused before their body is read).
        request_timeout: Seconds one request may take in all (image downloads included);
            past it the answer is 504.
        max_body_bytes: Largest request body (a base64 image counts); more is 413.
        max_products: Most products in one request.
        api_key: Required in ``X-API-Key`` (or ``Authorization: Bearer``) when set.
        on_image_error: ``reject``: a product's image that cannot be used answers 422 (the
            seller can fix it); ``degrade``: predict from the text and mark the row
            ``degraded``, as the feed job does. A request may ask for either with
            ``?on_image_error=``.
        corrections: JSON lines file the Label Studio webhook appends reviewers' answers to.
        retry_after_s: The ``Retry-After`` sent with 503 answers.
    """

    max_batch: int = 64
    window_ms: float = 5.0
    max_queue: int = 256
    request_timeout: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_products: int = 64
    api_key: str | None = None
    on_image_error: str = "reject"
    corrections: Path | None = None
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if self.on_image_error not in ON_IMAGE_ERROR:
            raise ValueError(
                f"on_image_error must be one of {', '.join(ON_IMAGE_ERROR)}; got {self.on_image_error!r}"
            )
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_products"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.window_ms < 0 or self.request_timeout <= 0:
            raise ValueError(
                f"expected window_ms >= 0 and request_timeout > 0; got {self.window_ms} and "
                f"{self.request_timeout}"
            )
