"""The feed job on a Ray cluster: stage, categorize on the workers, merge into one output.

Steps, all in a work folder next to the output (``.<output name>.ray/``):

1. the feed is staged once (:mod:`.staging`) with the library's reader, every record numbered;
2. a Ray dataset over the staged parts still to do goes through :func:`.ray.categorize_dataset`
   and is written as Parquet parts (``output/``);
3. the parts are merged by ``row`` into the output (:mod:`.parts`), in the formats, and with
   the totals, the local job writes; the work folder is removed.

Resume follows the local job's rules: the work folder records the job's fingerprint
(:meth:`~multimodal_cat.feeds.job.OutputPlan.fingerprint`: feed, predictor, columns, mappings,
options) and a resume with another one is refused; the feed's records must still be the ones
staged; only the rows that no finished part holds are redone.

The feed's confidence shift (:mod:`multimodal_cat.feeds.shift`) is fitted once, here, on
records spread over the staged feed, recorded in the job file (a resume reads it back) and
handed to every worker, so all batches use one shift: for a feed file, the one the local job
fits (from stdin the local job reads its first records instead, which Ray, having staged the
whole stream, does not need to).

Example:
    >>> from multimodal_cat.distributed import PredictorSpec
    >>> summary = categorize_feed_on_ray(  # doctest: +SKIP
    ...     "feed.csv", PredictorSpec(taxonomy="shopify"), "out.csv", workers=2)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from multimodal_cat.distributed.parts import finished_rows, merge_parts
from multimodal_cat.distributed.ray import BatchJob, categorize_dataset, ray_session
from multimodal_cat.distributed.spec import BuiltPredictor, PredictorSpec
from multimodal_cat.distributed.staging import (
    StagedFeed,
    check_same_feed,
    load_staged,
    read_parts,
    read_records,
    stage_feed,
)
from multimodal_cat.errors import InvalidArgumentError, optional_import
from multimodal_cat.feeds.columns import ColumnMap
from multimodal_cat.feeds.images import ImageLoader
from multimodal_cat.feeds.job import FeedSummary, check_unfinished, plan_output
from multimodal_cat.feeds.lock import OutputLock
from multimodal_cat.feeds.read import FeedReader
from multimodal_cat.feeds.shift import NOTE, sample_numbers, settle_shift
from multimodal_cat.feeds.write import ResumeError, check_output_path, fingerprint_differences
from multimodal_cat.zero_shot.confidence import FeedShift

_JOB_FILE = "job.json"


@dataclass
class RayFeedSummary(FeedSummary):
    """A :class:`~multimodal_cat.feeds.job.FeedSummary` with the Ray job's own figures.

    Attributes:
        startup_seconds: Connecting to (or starting) Ray.
        redone: Rows found in more than one output part (work done twice).
    """

    startup_seconds: float = 0.0
    redone: int = 0


def work_folder(output: str | Path) -> Path:
    """The Ray job's work folder for ``output``."""
    output = Path(output)
    return output.with_name(f".{output.name}.ray")


def categorize_feed_on_ray(
    feed: str | Path | IO[bytes],
    spec: PredictorSpec,
    output: str | Path,
    *,
    columns: ColumnMap | dict[str, str] | Sequence[str] | None = None,
    format: str | None = None,
    batch_size: int = 64,
    resume: bool = False,
    images: ImageLoader | None = None,
    keep_columns: Sequence[str] = (),
    min_confidence: float | None = None,
    address: str | None = None,
    workers: int | None = None,
    gpus_per_worker: float = 0.0,
    part_rows: int | None = None,
    progress: bool = True,
    built: BuiltPredictor | None = None,
) -> RayFeedSummary:
    """Categorize every row of a feed on a Ray cluster into ``output``, as the local job would.

    Args:
        feed: Path (CSV, TSV, JSON lines, Parquet, Excel, optionally gzipped), ``"-"`` or a stream.
        spec: Builds the predictor on each worker (and once here, for the job's fingerprint).
        output: ``.csv``, ``.jsonl`` or ``.parquet``.
        columns, format, batch_size, images, keep_columns, min_confidence: As for
            :func:`~multimodal_cat.feeds.job.categorize_feed`.
        resume: Continue an interrupted run of the same job (only missing rows are redone).
        address: Ray cluster (``auto``, ``ray://host:10001``); ``None``: a local one.
        workers: Actors, each with its own predictor (default: one per CPU).
        gpus_per_worker: GPUs each actor reserves.
        part_rows: Records per staged part (default: 8 batches).
        progress: Show progress bars.
        built: ``spec`` already built by the caller (saves building it again).

    Returns:
        The :class:`RayFeedSummary`.

    Raises:
        ResumeError: ``resume`` on a finished output, another job's work, or a changed feed.
        FeedColumnError: A named column is missing.
        MissingRowsError: Rows are missing after the run (rerun with ``resume``).
        OutputLockedError: Another job is writing the same output.
        MissingPackageError: Ray is not installed (the ``ray`` extra).
    """
    start = time.monotonic()
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size}")
    output, folder = Path(output), work_folder(output)
    part_rows = part_rows or 8 * batch_size  # a resume redoes at most the parts in flight
    part_rows = -(-part_rows // batch_size) * batch_size  # whole batches: the local job's batches
    for module in ("ray", "ray.data"):  # before any staging
        optional_import(module, extra="ray", purpose="--engine ray")
    named = [Path(feed)] if isinstance(feed, (str, Path)) and str(feed) != "-" else []
    check_output_path(output, named)  # not the feed; its folder made (the lock file goes there)
    built = built or spec.build()
    with OutputLock(folder):  # one job per output, from staging to the merge
        summary = _categorize(
            feed, spec, built, output, folder, columns=columns, format=format,
            batch_size=batch_size, resume=resume, images=images, keep_columns=keep_columns,
            min_confidence=min_confidence, address=address, workers=workers,
            gpus_per_worker=gpus_per_worker, part_rows=part_rows, progress=progress,
        )
    summary.seconds = time.monotonic() - start
    return summary


def _categorize(
    feed: Any, spec: PredictorSpec, built: BuiltPredictor, output: Path, folder: Path, *,
    columns: Any, format: str | None, batch_size: int, resume: bool, images: ImageLoader | None,
    keep_columns: Sequence[str], min_confidence: float | None, address: str | None,
    workers: int | None, gpus_per_worker: float, part_rows: int, progress: bool,
) -> RayFeedSummary:
    """The job itself, under the output's lock (see :func:`categorize_feed_on_ray`)."""
    with FeedReader(feed, format) as reader:
        protect = [reader.path] if reader.path else []
        check_output_path(output, protect)
        if resume and not folder.exists():
            check_unfinished(output)
        review = built.router is not None
        plan = plan_output(reader, columns, keep_columns, built.mapper, built.names, review=review)
        root = (reader.path.parent if reader.path else Path.cwd()).resolve()
        loader = images or ImageLoader(root)
        loader.root = Path(loader.root).resolve()  # workers may run in another folder
        fingerprint = plan.fingerprint(
            feed, reader, built.predictor, built.mapper, loader,
            shard=[0, 1], min_confidence=min_confidence, router=built.router,
        )
        staged = _staged(reader, folder, resume, fingerprint, plan.columns, part_rows, progress)
    shift = _feed_shift(built, folder, staged, plan.cmap, loader, min_confidence)
    job = BatchJob(
        spec, plan.cmap, plan.names, plan.keep, loader, min_confidence, staged=True, feed_shift=shift
    )
    done = finished_rows(folder / "output")
    startup = 0.0
    if len(done) < staged.rows:
        startup = _run(staged, done, job, folder, address, workers, gpus_per_worker,
                       batch_size, progress)
    result = merge_parts(folder / "output", output, plan.columns, staged.rows, protect)
    shutil.rmtree(folder, ignore_errors=True)
    return RayFeedSummary(
        rows=result.rows,
        ok=result.counts["ok"],
        degraded=result.counts["degraded"],
        failed=result.counts["error"],
        resumed_from=len(done),
        output=str(output),
        startup_seconds=startup,
        redone=result.repeated,
        confidence_shift=shift,
    )


def _feed_shift(
    built: BuiltPredictor, folder: Path, staged: StagedFeed, columns: ColumnMap,
    loader: ImageLoader, min_confidence: float | None,
) -> FeedShift | None:
    """The feed's confidence shift: read back from the job file, else fitted on the staged
    records at :func:`~multimodal_cat.feeds.shift.sample_numbers` and recorded there."""
    state = _read_job(folder) or {}
    shift = settle_shift(
        built.predictor, state.get(NOTE),
        lambda: read_records(staged, sample_numbers(staged.rows)),
        columns, loader, min_confidence,
    )  # fmt: skip
    if shift is not None and not state.get(NOTE):
        _write_job(folder, {**state, NOTE: shift.to_dict()})
    return shift


def _staged(
    reader: FeedReader,
    folder: Path,
    resume: bool,
    fingerprint: dict[str, Any],
    columns: list[str],
    part_rows: int,
    progress: bool,
) -> StagedFeed:
    """The staged feed: reused on resume (after checking the job and the feed), else new."""
    recorded = _read_job(folder) if resume else None
    if recorded is not None:
        differs = fingerprint_differences(recorded, columns, fingerprint)
        if differs:
            raise ResumeError(
                f"cannot resume {folder}: it was written by a job with other options "
                f"({differs} differ); rerun with the same settings, or without --resume to "
                "start over"
            )
        staged = load_staged(folder / "input")
        if staged is not None:
            check_same_feed(reader, staged)
            return staged
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "output").mkdir(parents=True)
    _write_job(folder, {"fingerprint": fingerprint, "columns": columns})
    return stage_feed(reader, folder / "input", part_rows=part_rows, progress=progress)


def _write_job(folder: Path, state: dict[str, Any]) -> None:
    temp = folder / f".{_JOB_FILE}.tmp"
    temp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temp, folder / _JOB_FILE)


def _read_job(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run(
    staged: StagedFeed,
    done: set[int],
    job: BatchJob,
    folder: Path,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float,
    batch_size: int,
    progress: bool,
) -> float:
    """Categorize the rows not yet done into ``folder/output``; returns the start-up seconds."""
    full = [p for p in staged.parts if not any(r in done for r in range(p.first, p.last + 1))]
    partial = [p for p in staged.parts if p not in full and
               any(r not in done for r in range(p.first, p.last + 1))]
    started = time.monotonic()
    with ray_session(address, progress=progress) as ray:
        startup = time.monotonic() - started
        finished = frozenset(r for p in partial for r in range(p.first, p.last + 1) if r in done)
        paths = staged.paths(full + partial)
        # one block per staged part (read_parquet would pool small files into one block: one
        # worker busy, and a resume redoing everything)
        dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=len(paths))
        dataset = dataset.map_batches(
            read_parts, fn_kwargs={"skip": finished}, batch_size=1, batch_format="pyarrow",
            num_cpus=0.25,
        )
        result = categorize_dataset(
            dataset, job.spec, batch_size=batch_size, workers=workers,
            gpus_per_worker=gpus_per_worker, job=job,
        )
        result.write_parquet(str(folder / "output"))
    return startup
