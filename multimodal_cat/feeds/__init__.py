"""Read seller feeds, categorize them in batches, write results in order, resumably.

Data flow: :mod:`.read` (records) -> :mod:`.columns` (products) -> :mod:`.images` (pictures)
-> a predictor -> :mod:`.write` (output rows); :mod:`.job` runs the loop and :mod:`.shards`
splits a feed between processes.

Example:
    >>> from multimodal_cat.feeds import DryRunPredictor, categorize_feed
    >>> categorize_feed("examples/products.csv", DryRunPredictor(), "out.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.feeds.fake import DryRunPredictor
from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.job import FeedSummary, Predictor, categorize_feed
from multimodal_cat.feeds.read import FeedFormatError, FeedReader, RawRow, detect_format
from multimodal_cat.feeds.shards import (
    ShardError,
    merge_shards,
    resolve_shard,
    shard_path,
    wait_and_merge,
)
from multimodal_cat.feeds.write import OutputWriter, ResumeError, read_output

__all__ = [
    "ColumnMap",
    "DryRunPredictor",
    "FeedColumnError",
    "FeedFormatError",
    "FeedReader",
    "FeedSummary",
    "ImageLoader",
    "OutputWriter",
    "Predictor",
    "RawRow",
    "ResumeError",
    "ShardError",
    "categorize_feed",
    "detect_format",
    "merge_shards",
    "read_output",
    "resolve_shard",
    "shard_path",
    "wait_and_merge",
]
