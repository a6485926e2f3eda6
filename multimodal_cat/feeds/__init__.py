"""Read seller feeds, categorize them in batches, write results in order, resumably.

Data flow: :mod:`.read` (records) -> :mod:`.columns` (products) -> :mod:`.images` (pictures)
-> a predictor (:mod:`multimodal_cat.predictors`) -> :mod:`.write` (output rows); :mod:`.job`
runs the loop, :mod:`.shift` fixes the feed's zero-shot confidence shift before its first
batch, and :mod:`.shards` splits a feed between processes.

Example:
    >>> from multimodal_cat.feeds import categorize_feed
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> categorize_feed("examples/products.csv", DryRunPredictor(), "out.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.job import FeedSummary, categorize_feed
from multimodal_cat.feeds.read import FeedFormatError, FeedReader
from multimodal_cat.feeds.shards import ShardError, merge_shards, shard_path
from multimodal_cat.feeds.write import ResumeError, read_output

__all__ = [
    "ColumnMap",
    "FeedColumnError",
    "FeedFormatError",
    "FeedReader",
    "FeedSummary",
    "ImageLoader",
    "ResumeError",
    "ShardError",
    "categorize_feed",
    "merge_shards",
    "read_output",
    "shard_path",
]
