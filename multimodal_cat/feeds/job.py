"""Categorize a whole feed: stream rows, load images ahead, predict in batches, write in order.

The loop keeps two batches in flight: while the predictor works on batch *k*, the images of
batch *k + 1* download and decode in a thread pool. Memory stays flat (one feed chunk, two
batches of images, no growing state) however long the feed is. Every input record yields
exactly one output row with ``status`` ``ok``, ``degraded`` (predicted without the image,
which could not be used) or ``error`` (nothing could be predicted; ``error`` says why).

Before the first batch, a zero-shot predictor's confidence shift is fitted once on records
spread over the feed and recorded in the checkpoint (:mod:`.shift`), so every batch, of any
size, resumed or not, is calibrated on the feed rather than on its own 64 products.

The job takes a bare predictor (:class:`~multimodal_cat.predictors.base.Predictor`), which
sees each product once with its image already loaded (or left out, with the row marked
``degraded``), and an optional :class:`~multimodal_cat.mapping.apply.CategoryMapper` for the
equivalent categories in other trees.

Example:
    >>> from multimodal_cat.feeds import categorize_feed
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "feed.csv").write_text("title\\nBlue denim jacket\\nRed sneakers\\n")
    >>> summary = categorize_feed(
    ...     folder / "feed.csv", DryRunPredictor(), folder / "out.csv", progress=False)
    >>> summary.rows, summary.ok, summary.rows == summary.ok + summary.degraded + summary.failed
    (2, 2, True)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from multimodal_cat._progress import plural, progress_bar
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.feeds.columns import ColumnMap, passthrough_columns
from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.memory import release_freed_memory
from multimodal_cat.feeds.output_row import (
    matches,
    output_columns,
)
from multimodal_cat.feeds.read import FeedReader, RawRow
from multimodal_cat.feeds.resume import RowDigest, job_fingerprint, skip_done_rows
from multimodal_cat.feeds.rows import OutputRows, RowItem, feed_item, photo_loader
from multimodal_cat.feeds.shards import FEED_RECORDS, resolve_shard, shard_path
from multimodal_cat.feeds.shift import NOTE, SHIFT_SAMPLE_ROWS, sample_file, settle_shift, use_shift
from multimodal_cat.feeds.write import OutputWriter, ResumeError, checkpoint_path
from multimodal_cat.zero_shot.confidence import FeedShift

if TYPE_CHECKING:
    from multimodal_cat.feeds.rows import Router
    from multimodal_cat.mapping.apply import CategoryMapper
    from multimodal_cat.predictors.base import Predictor

# Freed encoder buffers go back to the OS every this many batches (see feeds/memory.py).
TRIM_EVERY_BATCHES = 20


@dataclass
class FeedSummary:
    """Totals of a finished job (resumed rows included), and the confidence shift every
    batch used (:mod:`.shift`; ``None`` for a predictor that takes none)."""

    rows: int = 0
    ok: int = 0
    degraded: int = 0
    failed: int = 0
    resumed_from: int = 0
    output: str = ""
    seconds: float = 0.0
    confidence_shift: FeedShift | None = None

    def __str__(self) -> str:
        rate = (self.rows - self.resumed_from) / self.seconds if self.seconds else 0.0
        resumed = f" ({self.resumed_from:,} from an earlier run)" if self.resumed_from else ""
        shift = f"; {self.confidence_shift}" if self.confidence_shift is not None else ""
        return (
            f"{self.rows:,} rows{resumed}: {self.ok:,} ok, {self.degraded:,} degraded, "
            f"{self.failed:,} failed -> {self.output} ({self.seconds:.1f} s, {rate:.1f} rows/s)"
            f"{shift}"
        )



def categorize_feed(
    feed: str | Path | IO[bytes],
    predictor: Predictor,
    output: str | Path,
    *,
    mapper: CategoryMapper | None = None,
    map_to: Sequence[str] = (),
    min_confidence: float | None = None,
    columns: ColumnMap | dict[str, str] | Sequence[str] | None = None,
    format: str | None = None,
    batch_size: int = 64,
    resume: bool = False,
    images: ImageLoader | None = None,
    keep_columns: Sequence[str] = (),
    shard: str | tuple[int, int] | None = None,
    progress: bool = True,
    router: Router | None = None,
) -> FeedSummary:
    """Categorize every row of a feed and write one output row per input row.

    Args:
        feed: Path (CSV, TSV, JSON lines, Parquet, Excel, optionally gzipped), ``"-"`` for stdin, or
            a binary stream.
        predictor: A :class:`~multimodal_cat.predictors.base.Predictor`; the job calls its
            ``predict(products, min_confidence=...)``.
        output: Output path; ``.csv``, ``.jsonl`` or ``.parquet``. With sharding, each shard
            writes ``<stem>.shard-I-of-N<ext>`` (merge them with :func:`merge_shards`).
        mapper: Maps each predicted category into other trees (keyed by target taxonomy).
        map_to: Target taxonomy names that get their own output columns (``google`` matches
            ``google/2021-09-21``). Names of ``mapper``'s targets are added automatically.
        min_confidence: Passed to the predictor: back off to a surer, coarser category.
        columns: Input column per product field (:class:`ColumnMap`, dict, or
            ``["title=Name", ...]``).
        format: Feed format when the extension does not tell it.
        batch_size: Products per ``predict`` call.
        resume: Continue an interrupted run of the same job (see :mod:`.write`).
        images: Image loader with its limits; default resolves relative paths against the
            feed's folder.
        keep_columns: Input columns copied to the output (``["*"]``: all).
        shard: ``"i/n"`` (0-based), ``(i, n)``, ``"auto"`` (``RANK``/``WORLD_SIZE`` set by
            ``accelerate launch``) or ``None``: process every n-th row starting at row i.
        progress: Show a tqdm progress bar on stderr.
        router: Marks each predicted row ``needs_review`` with its ``review_reason`` (see
            :class:`~multimodal_cat.review.routing.ReviewRouter`); ``None``: no such columns.

    Returns:
        The :class:`FeedSummary`.

    Raises:
        FeedColumnError: A named column is missing (raised before any output is written).
        Exception: Whatever the predictor raises; the output stays resumable.
    """
    start = time.monotonic()
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
    index, count = resolve_shard(shard)
    with FeedReader(feed, format) as reader:
        plan = plan_output(reader, columns, keep_columns, mapper, map_to, review=router is not None)
        cmap, names, keep, out_columns = plan.cmap, plan.names, plan.keep, plan.columns
        out_path = shard_path(output, index, count) if count > 1 else Path(output)
        root = reader.path.parent if reader.path else Path.cwd()
        loader = images or ImageLoader(root)
        fingerprint = plan.fingerprint(
            feed, reader, predictor, mapper, loader,
            shard=[index, count], min_confidence=min_confidence, router=router,
        )
        protect = [reader.path] if reader.path else []
        if resume and count == 1:
            check_unfinished(out_path)
        with OutputWriter(
            out_path, out_columns, resume=resume, fingerprint=fingerprint, protect=protect
        ) as writer:
            job = _Job(predictor, mapper, names, cmap, keep, loader, writer, min_confidence, router)
            shift = job.settle_shift(reader)
            before = use_shift(predictor, shift)  # every batch: the feed's shift
            try:
                job.run(reader, batch_size, index, count, progress)
            finally:
                use_shift(predictor, before)
                if images is None:
                    loader.close()
            if job.feed_records is not None:  # recorded with the finished part (see shards.py)
                writer.counts = {**writer.counts, FEED_RECORDS: job.feed_records}
            writer.finish()
    if count == 1:  # finished: no resume left to need it (shard parts keep theirs to merge)
        checkpoint_path(out_path).unlink(missing_ok=True)
    counts = writer.counts
    return FeedSummary(
        rows=writer.rows_done,
        ok=counts.get("ok", 0),
        degraded=counts.get("degraded", 0),
        failed=counts.get("error", 0),
        resumed_from=job.resumed_from,
        output=str(out_path),
        seconds=time.monotonic() - start,
        confidence_shift=shift,
    )


@dataclass
class OutputPlan:
    """What a feed's output holds: the resolved column map, the mapped trees that get
    columns, the kept input columns (input -> output name) and every output column in order."""

    cmap: ColumnMap
    names: list[str]
    keep: dict[str, str]
    columns: list[str]

    def fingerprint(
        self, feed: Any, reader: FeedReader, predictor: Any, mapper: Any, loader: ImageLoader,
        *, shard: list[int], min_confidence: float | None, router: Any,
    ) -> dict[str, Any]:
        """The job's fingerprint (see :func:`~.resume.job_fingerprint`), the same for either engine."""
        return job_fingerprint(
            feed, reader, predictor, self.cmap, mapper, self.names, self.keep, loader,
            shard=shard, min_confidence=min_confidence,
            review_threshold=getattr(router, "threshold", None),
        )


def plan_output(
    reader: FeedReader,
    columns: ColumnMap | dict[str, str] | Sequence[str] | None,
    keep_columns: Sequence[str],
    mapper: CategoryMapper | None,
    map_to: Sequence[str],
    *,
    review: bool,
) -> OutputPlan:
    """The output of a job over ``reader``'s feed (names of ``mapper``'s targets are added to
    ``map_to``).

    Raises:
        FeedColumnError: A named column is missing from the feed.
    """
    targets = mapper.target_names if mapper is not None else []
    names = list(map_to) + [n for n in targets if not _matches_any(n, map_to)]
    cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    cmap = cmap.resolve(reader.columns)
    taken = output_columns(names, review=review)
    keep = passthrough_columns(keep_columns, reader.columns, taken)
    return OutputPlan(cmap, names, keep, [*taken, *keep.values()])


def check_unfinished(output: Path) -> None:
    """Refuse to resume an output that finished: its progress file was removed at the end."""
    if output.exists() and not checkpoint_path(output).exists():
        raise ResumeError(
            f"nothing to resume: {output} is a finished output (a job removes its progress "
            "file when it completes); rerun without --resume to write it again"
        )


def _matches_any(name: str, names: Sequence[str]) -> bool:
    return any(matches(name, n) for n in names)


class _Job:
    """The streaming loop; one instance per :func:`categorize_feed` call."""

    def __init__(
        self,
        predictor: Predictor,
        mapper: CategoryMapper | None,
        names: list[str],
        cmap: ColumnMap,
        keep: dict[str, str],
        loader: ImageLoader,
        writer: OutputWriter,
        min_confidence: float | None = None,
        router: Router | None = None,
    ) -> None:
        self.predictor = predictor
        self.output_rows = OutputRows(
            predictor, mapper, names, min_confidence=min_confidence, router=router
        )
        self.cmap, self.keep, self.writer = cmap, keep, writer
        self.loader = photo_loader(predictor, loader)
        self.counts = {"ok": 0, "degraded": 0, "error": 0, **writer.counts}
        self.resumed_from = writer.rows_done
        self.feed_records: int | None = None  # records in the whole feed, once read to the end
        self.digest = RowDigest()  # of the input rows written, checked on resume
        self.min_confidence = min_confidence
        self.head: list[RawRow] = []  # a stream's first records, read for the shift, not yet done
        self.records: Iterator[RawRow] | None = None  # the stream they were read from

    def settle_shift(self, reader: FeedReader) -> FeedShift | None:
        """The feed's confidence shift (see :mod:`.shift`), recorded in the checkpoint: read
        back on resume; a file's sample is spread over all its records (every shard's), a
        stream's is its first records (kept to be categorized)."""
        writer = self.writer

        def sample() -> list[RawRow]:
            if reader.path is not None:
                return sample_file(reader.path, reader.format)
            self.records = iter(reader)  # one iterator: the job goes on from the head
            self.head = list(islice(self.records, SHIFT_SAMPLE_ROWS))
            return self.head

        recorded = writer.notes.get(NOTE)
        if writer.complete:  # nothing left to categorize
            return None if recorded is None else FeedShift.from_dict(recorded)
        shift = settle_shift(
            self.predictor, recorded, sample, self.cmap, self.loader, self.min_confidence
        )
        if shift is not None:
            writer.notes = {**writer.notes, NOTE: shift.to_dict()}
        return shift

    def run(
        self, reader: FeedReader, batch_size: int, index: int, count: int, progress: bool
    ) -> None:
        if self.writer.complete:
            return
        rows = self._rows(reader, index, count)
        bar = _progress_bar(reader, count, self.resumed_from, progress)
        pending: list[RowItem] | None = None
        try:
            for number, batch in enumerate(chunked(rows, batch_size), start=1):
                prepared = [self._prepare(raw) for raw in batch]  # starts image loads
                if pending is not None:
                    self._finish(pending)
                    bar.update(len(pending))
                pending = prepared
                if number % TRIM_EVERY_BATCHES == 0:
                    release_freed_memory()  # keeps memory flat over long feeds
            if pending is not None:
                self._finish(pending)
                bar.update(len(pending))
        finally:
            bar.close()

    def _rows(self, reader: FeedReader, index: int, count: int) -> Iterator[RawRow]:
        mine = (raw for raw in self._counted(reader) if (raw.number - 1) % count == index)
        recorded = self.writer.resumed_input_digest
        return skip_done_rows(mine, self.resumed_from, recorded, self.digest)

    def _counted(self, reader: FeedReader) -> Iterator[RawRow]:
        """Every record of the feed (all shards'), counted: merging shards checks the total."""
        for raw in chain(self.head, self.records or reader):
            self.feed_records = raw.number
            yield raw

    def _prepare(self, raw: RawRow) -> RowItem:
        return feed_item(raw, self.cmap, self.keep, self.loader)

    def _finish(self, items: list[RowItem]) -> None:
        rows = self.output_rows(items)
        for item, row in zip(items, rows, strict=True):
            self.counts[row["status"]] += 1
            self.digest.update(item.source)
        self.writer.input_digest = self.digest.hexdigest()
        self.writer.write_batch(rows, self.counts)


def chunked(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    """Consecutive lists of ``size`` records (the last one shorter)."""
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress_bar(reader: FeedReader, count: int, initial: int, enabled: bool) -> Any:
    """A bar named in words ("categorizing 60,000 rows of feed.csv"); for text feeds the total
    (lines) is counted in a background thread and named when known."""
    name = os.path.basename(str(reader.path or "stdin"))
    bar = progress_bar(
        initial=initial,
        unit="row",
        disable=not enabled,
        mininterval=0.5,
        desc=f"categorizing {name}",
        dynamic_ncols=True,
    )
    if bar.disable:
        return bar

    def count_rows() -> None:
        total = reader.estimate_rows()
        if total is not None:
            bar.total = -(-total // count)
            bar.set_description(f"categorizing {plural(bar.total, 'row')} of {name}", refresh=False)
            bar.refresh()

    if reader.format == "parquet":
        count_rows()
    else:
        threading.Thread(target=count_rows, daemon=True, name="count-rows").start()
    return bar
