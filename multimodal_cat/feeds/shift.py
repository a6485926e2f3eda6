"""One confidence shift per feed: read from a sample spread over the feed, before any batch.

A zero-shot predictor calibrates its confidences on the products it is given, with no label
(:mod:`multimodal_cat.zero_shot.confidence`). Given one batch of 64 at a time, each batch's
shift would lean mostly on a cautious prior and differ from batch to batch (on Flipkart test,
12.4% of the answers at >= 0.9 were wrong in calls of 64, against 8.5% in one call). So the
feed job first reads up to :data:`SHIFT_SAMPLE_ROWS` records spread evenly over the feed
(:func:`sample_numbers`; from a stream, its first records), fits one
:class:`~multimodal_cat.zero_shot.confidence.FeedShift` on them with the predictor's
``fit_feed_shift``, and every batch uses it: the shift is a property of the feed, the same
for any batch size, on a resume (the job's checkpoint records it) and on every Ray worker (the
driver fits it and hands it over). Predictors without ``fit_feed_shift`` (a trained
checkpoint) are left as they are; a predictor whose ``feed_shift`` the caller fixed keeps it.

Example:
    >>> sample_numbers(10, 4)
    [1, 3, 6, 8]
    >>> sample_numbers(3, 4)
    [1, 2, 3]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multimodal_cat.feeds.read import FeedFormatError, FeedReader, RawRow
from multimodal_cat.feeds.rows import feed_item, photo_loader, ready_items
from multimodal_cat.zero_shot.confidence import FeedShift

if TYPE_CHECKING:
    from multimodal_cat.feeds.columns import ColumnMap
    from multimodal_cat.feeds.images import ImageLoader

logger = logging.getLogger(__name__)

# Records the feed's shift is fitted on: the smallest of 100...4,000 whose shift varied by at
# most 0.05 (SD over 20 random samples) on both Flipkart dev and fashion dev (0.025 and 0.048;
# 1,000: 0.056 and 0.075); benchmarks/zero_shot_feed_shift.py, key
# ``feed_level_shift_run.sample_size``. A feed of fewer records is read whole.
SHIFT_SAMPLE_ROWS = 2000
NOTE = "feed_shift"  # its key in a job's checkpoint (local) or job file (Ray)


def takes_feed_shift(predictor: Any) -> bool:
    """Whether ``predictor`` calibrates its confidences on a feed (has ``fit_feed_shift``)."""
    return callable(getattr(predictor, "fit_feed_shift", None))


def sample_numbers(total: int, n: int = SHIFT_SAMPLE_ROWS) -> list[int]:
    """Up to ``n`` 1-based record numbers spread evenly over ``total`` records."""
    if total <= n:
        return list(range(1, total + 1))
    return [1 + (i * total) // n for i in range(n)]


def sample_file(path: Path, format: str, n: int = SHIFT_SAMPLE_ROWS) -> list[RawRow]:
    """The records of a feed file at :func:`sample_numbers` (two reads: count, then pick).
    A file that breaks mid-way is sampled up to the break (the job reports the break when it
    reaches it, after writing the rows before it, as without a sample)."""
    total = sum(1 for _ in _readable(path, format))
    wanted = set(sample_numbers(total, n))
    return [raw for raw in _readable(path, format) if raw.number in wanted]


def _readable(path: Path, format: str) -> Iterator[RawRow]:
    """The records of a feed file up to where it cannot be read any further."""
    try:
        with FeedReader(path, format) as reader:
            yield from reader
    except FeedFormatError:
        return


def settle_shift(
    predictor: Any,
    recorded: dict[str, Any] | None,
    sample: Callable[[], Sequence[RawRow]],
    columns: ColumnMap,
    loader: ImageLoader | None,
    min_confidence: float | None,
) -> FeedShift | None:
    """The feed's shift: the one the caller fixed on ``predictor``, else the job's ``recorded``
    one (a resume), else one fitted on ``sample()``'s records; ``None`` for a predictor that
    takes none, or when no product of the sample could be scored.

    Records that cannot make a product (or whose image cannot be used when the predictor
    scores images) are left out of the sample; if the predictor fails on the sample, the
    batches are calibrated on their own products, and a warning says so.
    """
    if not takes_feed_shift(predictor):
        return None
    if predictor.feed_shift is not None:
        return predictor.feed_shift
    if recorded:
        return FeedShift.from_dict(recorded)
    items = ready_items([feed_item(raw, columns, {}, photo_loader(predictor, loader)) for raw in sample()])
    products = [i.product for i in items if i.product.has_text or i.product.image is not None]
    try:
        return predictor.fit_feed_shift(products, min_confidence=min_confidence).feed_shift
    except Exception as error:  # the batches still run, each calibrated on its own products
        logger.warning(
            "the feed's confidence shift could not be fitted on %d sampled products (%s: %s); "
            "each batch is calibrated on its own products", len(products), type(error).__name__, error,
        )
        return None
    finally:
        predictor.feed_shift = None  # the job sets it for its batches (use_shift)


def use_shift(predictor: Any, shift: FeedShift | None) -> FeedShift | None:
    """Fix ``shift`` on ``predictor`` for every later call; returns the one it had (to restore).
    A predictor that takes no shift is left alone."""
    if not takes_feed_shift(predictor):
        return None
    before, predictor.feed_shift = predictor.feed_shift, shift
    return before
