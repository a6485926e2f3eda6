"""Categorize a Ray dataset: a pool of actors, each with its own predictor, over the rows.

Each actor (:class:`RowsActor`) builds its predictor once from a
:class:`~multimodal_cat.distributed.spec.PredictorSpec` and turns every batch into output rows
with the local job's own per-batch step (:func:`~multimodal_cat.feeds.rows.feed_item` and
:class:`~multimodal_cat.feeds.rows.OutputRows`), so a row gets the same cells from either
engine. The batch function never raises (Ray would fail the whole job): when a batch fails,
its rows are predicted one by one and a row that still fails becomes an ``error`` row saying
why. Actors ask for half a CPU by default: whole-CPU actors can take every CPU of a small
machine and leave none to the read tasks that feed them.

Example:
    >>> import ray  # doctest: +SKIP
    >>> ds = ray.data.from_items([{"row": 1, "title": "Leather ankle boots"}])  # doctest: +SKIP
    >>> out = categorize_dataset(ds, PredictorSpec(taxonomy="shopify"))  # doctest: +SKIP
    >>> out.take(1)[0]["category_path"]  # doctest: +SKIP
    'Apparel & Accessories > Shoes > Boots'
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multimodal_cat.distributed.parts import encode_rows
from multimodal_cat.distributed.spec import PredictorSpec
from multimodal_cat.distributed.staging import decode_records
from multimodal_cat.errors import InvalidArgumentError, optional_import
from multimodal_cat.feeds.columns import ColumnMap, passthrough_columns
from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.memory import release_freed_memory
from multimodal_cat.feeds.output_row import output_columns
from multimodal_cat.feeds.read import RawRow
from multimodal_cat.feeds.rows import OutputRows, feed_item, photo_loader
from multimodal_cat.feeds.shift import use_shift
from multimodal_cat.zero_shot.confidence import FeedShift

# Freed buffers go back to the OS every this many batches (see feeds/memory.py).
_TRIM_EVERY = 20


@dataclass
class BatchJob:
    """Everything an actor needs besides the batches (plain, picklable values).

    Attributes:
        spec: Builds the predictor, mapper and router.
        cmap: The column map, resolved against the feed's columns.
        names: Mapped trees that get output columns.
        keep: Input column -> output column, copied to each row.
        loader: The image loader (its options; each actor starts its own threads).
        min_confidence: Back off to a surer, coarser category.
        staged: Batches hold staged records (``row``, ``line``, ``record``), not plain columns.
        feed_shift: The feed's confidence shift, fitted once by the driver
            (:mod:`multimodal_cat.feeds.shift`); every actor's predictor uses it.
    """

    spec: PredictorSpec
    cmap: ColumnMap
    names: list[str] = field(default_factory=list)
    keep: dict[str, str] = field(default_factory=dict)
    loader: ImageLoader | None = None
    min_confidence: float | None = None
    staged: bool = False
    feed_shift: FeedShift | None = None


class RowsActor:
    """One worker: builds the predictor once, then turns batches into output-row tables."""

    def __init__(self, job: BatchJob) -> None:
        built = job.spec.build()
        if job.feed_shift is not None:
            use_shift(built.predictor, job.feed_shift)  # the driver's, for every batch
        self.job = job
        self.output_rows = OutputRows(
            built.predictor, built.mapper, job.names,
            min_confidence=job.min_confidence, router=built.router,
        )
        self.batches = 0

    def __call__(self, batch: Any) -> Any:
        """The output rows of a batch (a pyarrow table); never raises."""
        records = decode_records(batch) if self.job.staged else _plain_records(batch)
        try:
            rows = self._rows(records)
        except Exception:  # one bad row must not fail the batch: each row alone
            rows = [self._row_alone(record) for record in records]
        self.batches += 1
        if self.batches % _TRIM_EVERY == 0:
            release_freed_memory()
        return encode_rows(rows)

    def _rows(self, records: Sequence[RawRow]) -> list[dict[str, Any]]:
        job = self.job
        loader = photo_loader(self.output_rows.predictor, job.loader)
        items = [feed_item(raw, job.cmap, job.keep, loader) for raw in records]
        return self.output_rows(items)

    def _row_alone(self, record: RawRow) -> dict[str, Any]:
        try:
            return self._rows([record])[0]
        except Exception as error:
            return {
                "row": record.number,
                "id": "",
                "status": "error",
                "warnings": list(record.warnings),
                "error": f"the model failed on this row ({type(error).__name__}: {error})",
            }


def categorize_dataset(
    dataset: Any,
    spec: PredictorSpec,
    *,
    columns: ColumnMap | dict[str, str] | Sequence[str] | None = None,
    keep_columns: Sequence[str] = (),
    images: ImageLoader | None = None,
    min_confidence: float | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    cpus_per_worker: float = 0.5,
    gpus_per_worker: float = 0.0,
    job: BatchJob | None = None,
) -> Any:
    """Categorize every row of a Ray dataset; one output row per input row.

    The dataset holds feed columns (``title``, ``image_url``... as the local job reads them)
    and a ``row`` column numbering the records (the output's ``row``). The result holds
    ``row, id, status, category_id, category_path, confidence, error`` and ``record``, the
    whole output row as the local job writes it, pickled (:func:`.parts.decode_rows`).

    Args:
        dataset: A :class:`ray.data.Dataset`.
        spec: Builds each worker's predictor (never the predictor itself: it does not travel).
        columns: Input column per product field (as for the local job).
        keep_columns: Input columns copied to the output row (``["*"]``: all).
        images: Image loader with its limits; default resolves relative paths against the
            current folder.
        min_confidence: Back off to a surer, coarser category.
        batch_size: Rows per ``predict`` call.
        workers: Actors (each with its own predictor); default: one per CPU of the cluster.
        cpus_per_worker: CPUs each actor reserves (fractions keep CPUs for the read tasks).
        gpus_per_worker: GPUs each actor reserves.
        job: Internal: the feed job's prepared :class:`BatchJob` (then ``columns``,
            ``keep_columns``, ``images`` and ``min_confidence`` are not used).

    Returns:
        The output :class:`ray.data.Dataset` (lazy: write or iterate it to run).

    Raises:
        InvalidArgumentError: No ``row`` column, or a batch size or worker count under 1.
    """
    ray = optional_import("ray", extra="ray", purpose="Categorizing on Ray")
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
    if job is None:
        job = _plain_job(dataset, spec, columns, keep_columns, images, min_confidence)
    count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    if count < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {count}")
    return dataset.map_batches(
        RowsActor,
        fn_constructor_kwargs={"job": job},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=count),  # Ray replaces a lost actor and
        num_cpus=cpus_per_worker,  # retries its batch (its defaults for actor pools)
        num_gpus=gpus_per_worker or None,
    )


def _plain_job(
    dataset: Any,
    spec: PredictorSpec,
    columns: Any,
    keep_columns: Sequence[str],
    images: ImageLoader | None,
    min_confidence: float | None,
) -> BatchJob:
    """The :class:`BatchJob` of a user's dataset of feed columns (needs a ``row`` column)."""
    found = [c for c in dataset.columns() if c != "row"]
    if "row" not in dataset.columns():
        raise InvalidArgumentError(
            f"expected a 'row' column numbering the records (the output's row); found "
            f"{', '.join(found) or 'no columns'}"
        )
    cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    cmap = cmap.resolve(found)
    names = spec.build().names if spec.map_to else []  # a mapping file's tree, by its short name
    taken = output_columns(names, review=spec.review_threshold is not None)
    keep = passthrough_columns(keep_columns, found, taken)
    return BatchJob(spec, cmap, names, keep, images or ImageLoader(Path.cwd()), min_confidence)


def _plain_records(batch: Any) -> list[RawRow]:
    """The records of a batch of plain feed columns (its ``row`` column numbers them)."""
    records = []
    for values in batch.to_pylist():
        number = values.pop("row")
        error = None if number is not None else "this record has no row number"
        records.append(RawRow(number or 0, number or 0, values if error is None else None, error))
    return records


@contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, progress: bool = True
) -> Iterator[Any]:
    """Connect to a Ray cluster (``address``: ``auto``, ``ray://host:port``; ``None``: start a
    new local one, whatever cluster ``ray start`` left recorded), yielding the ``ray`` module;
    shuts down only what it started or joined. A session already initialized (by the caller)
    is used as it is."""
    ray = optional_import("ray", extra="ray", purpose="Categorizing on Ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=address or "local",  # not a cluster recorded by an earlier `ray start`
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    quiet = logging.getLogger("ray.data")
    level, quiet.level = quiet.level, logging.WARNING  # not every step of the plan
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"ray\.")  # Ray's advice to Ray's users
            yield ray
    finally:
        quiet.setLevel(level)
        if started:
            ray.shutdown()
