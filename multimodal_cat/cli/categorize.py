"""``multimodal-cat categorize``: categorize a product feed into an output file.

Example:
    $ multimodal-cat categorize examples/products.csv --taxonomy shopify --map-to google -o out.csv
    $ cat feed.jsonl | multimodal-cat categorize - --format jsonl --dry-run -o out.jsonl
    $ multimodal-cat categorize feed.csv -o - --quiet | head               # CSV on stdout
    $ multimodal-cat categorize big.csv --model my-model --shard 0/4 -o out.csv   # one of 4 processes
    $ multimodal-cat categorize --merge-shards 4 -o out.csv                      # after all 4 finished
    $ accelerate launch --num_processes 4 -m multimodal_cat categorize big.csv --model m --merge -o out.csv

Exit codes: 0 every row was written (some may be ``error`` rows, see the summary); 1 the job
stopped (e.g. the model failed; rerun with ``--resume``); 2 a mistake in the command or
input (missing column, unknown format...); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
After 130 or 143 the rows written so far are kept: rerun with ``--resume``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multimodal_cat._progress import bars_enabled, info
from multimodal_cat.cli.checks import (
    check_file,
    check_folder,
    check_map_targets,
    check_model,
    check_taxonomy,
)
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.output import is_stdout, output_path, plain_warnings, shown
from multimodal_cat.cli.review import add_routing_arguments, build_router
from multimodal_cat.cli.types import add_column_argument, probability
from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.feeds.images import ImageLoader, ImageOptionError
from multimodal_cat.feeds.lock import OutputLockedError
from multimodal_cat.feeds.read import FORMATS, FeedFormatError, FeedReader, detect_format
from multimodal_cat.feeds.shards import ShardError, merge_shards, resolve_shard, wait_and_merge
from multimodal_cat.feeds.write import (
    OutputPathError,
    ResumeError,
    check_output_path,
    output_format,
)

if TYPE_CHECKING:
    from multimodal_cat.distributed.spec import BuiltPredictor

# ImageLoader option -> the command-line flag that sets it
_LOADER_FLAGS = {
    "timeout": "image_timeout",
    "max_bytes": "max_image_bytes",
    "max_pixels": "max_image_pixels",
    "retries": "image_retries",
    "workers": "image_workers",
    "allow_private_hosts": "allow_private_hosts",
}
_INPUT_ERRORS = (
    FeedColumnError,
    FeedFormatError,
    ShardError,
    ResumeError,
    OutputPathError,
    OutputLockedError,
    FileNotFoundError,
)


def add_parser(subparsers: Any) -> None:
    """Add the ``categorize`` sub-command."""
    p = subparsers.add_parser(
        "categorize",
        help="categorize a product feed (CSV, TSV, JSON lines, Parquet, Excel)",
        description="Categorize every row of a product feed; one output row per input row, in order.",
    )
    p.add_argument("feed", nargs="?", metavar="FEED", help="feed file, or - for stdin")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: .csv, .jsonl or .parquet; - for stdout (CSV, or JSON lines when "
        "the feed is JSON lines)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="trained model folder or hub id")
    which.add_argument("--taxonomy", help="zero-shot into this taxonomy (default: shopify)")
    which.add_argument(
        "--dry-run", action="store_true", help="no model: check feed, images and output only"
    )
    p.add_argument(
        "--map-to",
        action="append",
        default=[],
        metavar="TAXONOMY",
        help="also give the equivalent category in this taxonomy (repeatable), e.g. google; "
        "or a mapping file (from `taxonomy align` or Shopify's rules, reviewed or not)",
    )
    p.add_argument("--format", choices=FORMATS, help="feed format (default: from the extension)")
    add_column_argument(p)
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="copy this input column to the output (repeatable; '*' for all)",
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="products per model call (default: %(default)s)"
    )
    p.add_argument(
        "--min-confidence",
        type=probability,
        metavar="P",
        help="back off to the deepest category on the best one's path whose probability "
        "reaches P (a surer, coarser category); default: always the best leaf",
    )
    p.add_argument("--bf16", action="store_true", help="run the model in bfloat16")
    p.add_argument(
        "--image-encoder",
        metavar="MODEL",
        help="zero-shot only: an aligned image-text model (CLIP, SigLIP... hub id or folder) "
        "that adds the products' images to the evidence",
    )
    p.add_argument(
        "--text-encoder",
        metavar="MODEL",
        help="zero-shot only: the text encoder (default minilm, English; multilingual-e5-small "
        "for titles in other languages, with the multilingual extra; or a hub id or folder)",
    )
    p.add_argument(
        "--adapt",
        action="store_true",
        help="zero-shot only: smooth each batch's answers over the batch's own most similar "
        "products (no labels read); give it large batches (--batch-size 2000 or more). It "
        "gains about a point of accuracy and loosens confidences (see the README)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads for the model (default: torch's choice); on a machine busy with "
        "other jobs, fewer threads than cores can be faster",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into the same output"
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="process shard I of N (0-based), or 'auto' under accelerate launch",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --shard: shard 0 waits for the other shards, then merges all parts into -o",
    )
    p.add_argument(
        "--merge-shards",
        type=int,
        metavar="N",
        help="merge the N finished shard parts of -o and exit",
    )
    add_routing_arguments(p)
    _add_engine_arguments(p)
    images = p.add_argument_group("images")
    images.add_argument(
        "--image-root", help="folder for relative image paths (default: the feed's folder)"
    )
    images.add_argument(
        "--allow-scheme",
        action="append",
        default=[],
        metavar="SCHEME",
        help="also allow this URL scheme besides http/https (e.g. file, ftp)",
    )
    images.add_argument(
        "--allow-private-hosts",
        action="store_true",
        help="also download from loopback, private and link-local addresses (refused by "
        "default, redirects included)",
    )
    images.add_argument(
        "--image-timeout",
        type=float,
        default=10.0,
        help="wall-clock seconds per download attempt, whatever the server's pace "
        "(default: %(default)s)",
    )
    images.add_argument(
        "--image-retries",
        type=int,
        default=2,
        help="extra attempts on timeouts and 5xx (default: %(default)s)",
    )
    images.add_argument(
        "--max-image-bytes",
        type=int,
        default=20 * 1024 * 1024,
        help="largest image file in bytes (default: %(default)s)",
    )
    images.add_argument(
        "--max-image-pixels",
        type=int,
        default=40_000_000,
        help="largest image, width x height (default: %(default)s)",
    )
    images.add_argument(
        "--image-workers", type=int, default=8, help="threads loading images (default: %(default)s)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run)


def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    engine = p.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: workers of a Ray cluster (needs the ray extra), "
        "same output (default: %(default)s)",
    )
    engine.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --engine ray: the cluster (auto, or ray://HOST:10001); default: start one "
        "on this machine",
    )
    engine.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="with --engine ray: workers, each with its own model (default: one per CPU)",
    )
    engine.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="G",
        help="with --engine ray: GPUs each worker reserves, e.g. 1 or 0.5 (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    if args.merge_shards is not None:
        return _merge(args)
    _check_args(args)
    if args.feed != "-":
        _preflight(args)  # column and format mistakes before any model loads
    from multimodal_cat.align.mode import LanguageWarning

    with plain_warnings(LanguageWarning):  # "the products' text looks German..."
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Build the predictor, run the feed job (here or on Ray) and say what it did."""
    loader = _image_loader(args)
    spec = _spec(args, absolute=args.engine == "ray")
    try:
        built = _build(args, spec)
        router = build_router(args, built.predictor) if not args.dry_run else None
    except BaseException:
        loader.close()
        raise
    predictor, mapper = built.predictor, built.mapper
    if args.engine == "ray":
        code, summary = _categorize_on_ray(args, spec, built, router, loader)
    else:
        with output_path(args.output, _stdout_suffix(args)) as output:
            code, summary = _categorize(args, predictor, mapper, router, loader, str(output))
    if code:
        return code
    info(str(replace(summary, output=shown(args.output))))
    if router is not None:
        if summary.resumed_from or args.engine == "ray":  # the router saw none or some rows: count the output
            router.seen, router.flagged = _review_totals(args.output)
        info(str(router))
    index, count = resolve_shard(args.shard)
    if args.merge and count > 1 and index == 0:
        info(f"waiting for the other {count - 1} shard(s) to finish...")
        try:
            rows = wait_and_merge(args.output, count)
        except (ValueError, ShardError) as error:
            raise UserError(str(error)) from None
        info(f"merged {count} shards: {rows:,} rows -> {args.output}")
    return 0


def _categorize(
    args: argparse.Namespace, predictor: Any, mapper: Any, router: Any, loader: Any, output: str
) -> tuple[int, Any]:
    """Run the feed job into ``output``; ``(exit code, summary)``."""
    from multimodal_cat.feeds.job import categorize_feed

    try:
        summary = categorize_feed(
            args.feed,
            predictor,
            output,
            mapper=mapper,
            map_to=args.map_to,
            min_confidence=args.min_confidence,
            columns=args.column,
            format=args.format,
            batch_size=args.batch_size,
            resume=args.resume,
            images=loader,
            keep_columns=args.keep,
            shard=args.shard,
            progress=bars_enabled(),
            router=router,
        )
    except _INPUT_ERRORS as error:
        raise UserError(str(error)) from None
    except (KeyboardInterrupt, UserError):
        raise  # (SIGTERM's Terminated is a BaseException: it passes, like Ctrl-C)
    except Exception as error:
        return _stopped(args, error), None
    finally:
        loader.close()
    return 0, summary


def _categorize_on_ray(
    args: argparse.Namespace, spec: Any, built: Any, router: Any, loader: ImageLoader
) -> tuple[int, Any]:
    """Run the feed job on Ray into ``args.output``; ``(exit code, summary)``."""
    from dataclasses import replace as with_fields

    from multimodal_cat.errors import MissingPackageError

    try:
        from multimodal_cat.distributed.job import categorize_feed_on_ray

        spec = with_fields(
            spec,
            review_threshold=getattr(router, "threshold", None),
            review_source=getattr(router, "source", ""),
        )
        built.router = router
        summary = categorize_feed_on_ray(
            args.feed, spec, args.output, columns=args.column, format=args.format,
            batch_size=args.batch_size, resume=args.resume, images=loader,
            keep_columns=args.keep, min_confidence=args.min_confidence,
            address=args.ray_address, workers=args.workers,
            gpus_per_worker=args.gpus_per_worker, progress=bars_enabled(), built=built,
        )
    except (*_INPUT_ERRORS, MissingPackageError) as error:
        raise UserError(str(error)) from None
    except (KeyboardInterrupt, UserError):
        raise
    except Exception as error:  # the cluster failed, or rows are missing: --resume redoes them
        return _stopped(args, error), None
    finally:
        loader.close()
    info(f"ray: {summary.startup_seconds:.1f} s to start, {summary.redone:,} rows done twice")
    return 0, summary


def _stopped(args: argparse.Namespace, error: Exception) -> int:
    """Say the job stopped (and what is kept); the exit code 1."""
    kept = (
        "the rows written so far went to stdout"
        if is_stdout(args.output)
        else "Rows written so far are kept; rerun the same command with --resume to continue."
    )
    print(f"multimodal-cat: the job stopped: {type(error).__name__}: {error}\n{kept}", file=sys.stderr)
    return 1


def _stdout_suffix(args: argparse.Namespace) -> str:
    """``-o -`` writes JSON lines for a JSON-lines feed, else CSV."""
    try:
        fmt = args.format or (detect_format(args.feed) if args.feed != "-" else "csv")
    except FeedFormatError:
        fmt = "csv"
    return ".jsonl" if fmt == "jsonl" else ".csv"


def _review_totals(output: str) -> tuple[int, int]:
    """``(rows routed, rows needing review)`` over a whole output file (resumed runs included)."""
    from multimodal_cat.feeds.write import read_output

    seen = flagged = 0
    for row in read_output(output):
        if row.get("status") != "error" and row.get("category_id"):
            seen += 1
            flagged += str(row.get("needs_review")).lower() in ("true", "1")
    return seen, flagged


def _check_args(args: argparse.Namespace) -> None:
    if not args.feed:
        raise UserError(
            "categorize needs a FEED (a file, or - for stdin) unless --merge-shards is given"
        )
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    review = [flag for flag, value in (("--review-below", args.review_below),
                                       ("--target-precision", args.target_precision),
                                       ("--holdout", args.holdout)) if value is not None]
    if args.dry_run and review:
        raise UserError(
            f"--dry-run predicts placeholder categories, which cannot be reviewed: drop "
            f"{' and '.join(review)}, or give --model / --taxonomy"
        )
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    _check_engine(args)
    _check_stdout(args)
    try:
        if not is_stdout(args.output):
            output_format(args.output)
        resolve_shard(args.shard)
        ColumnMap.from_args(args.column)
    except (ValueError, ShardError) as error:
        raise UserError(str(error)) from None
    _check_paths(args)
    if args.shard is None and args.engine == "local" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        args.shard = "auto"  # under accelerate launch / torchrun: one shard per process
    if args.feed == "-" and args.image_root is None:
        args.image_root = str(Path.cwd())


def _check_engine(args: argparse.Namespace) -> None:
    """Ray's flags need ``--engine ray``; Ray splits the feed itself (no shards, no stdout)."""
    if args.engine != "ray":
        for flag, given in (("--ray-address", args.ray_address), ("--workers", args.workers),
                            ("--gpus-per-worker", args.gpus_per_worker)):
            if given:
                raise UserError(f"{flag} is for --engine ray; add --engine ray or drop {flag}")
        return
    for flag, given in (("--shard", args.shard), ("--merge", args.merge),
                        ("-o -", is_stdout(args.output))):
        if given:
            raise UserError(f"{flag} is for the local engine; --engine ray splits the feed itself")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.gpus_per_worker < 0:
        raise UserError(f"--gpus-per-worker must be 0 or more, got {args.gpus_per_worker}")


def _check_stdout(args: argparse.Namespace) -> None:
    """``-o -`` streams one whole run: nothing to resume, shard or merge."""
    if not is_stdout(args.output):
        return
    for flag, given in (("--resume", args.resume), ("--shard", args.shard), ("--merge", args.merge)):
        if given:
            raise UserError(f"{flag} needs an output file; -o - writes to stdout")


def _check_paths(args: argparse.Namespace) -> None:
    """Files, folders, trees and model names, checked before torch or a model loads."""
    check_file(args.feed, "feed file")
    check_model(args.model, "--model")
    check_model(args.image_encoder, "--image-encoder")
    check_taxonomy(args.taxonomy, "--taxonomy")
    check_folder(args.image_root, "--image-root folder")
    check_file(args.holdout, "--holdout feed")
    check_map_targets(args.map_to, "--map-to")


def _image_loader(args: argparse.Namespace) -> ImageLoader:
    """The image loader the flags ask for; impossible values are refused (exit 2) up front."""
    root = args.image_root or (Path(args.feed).parent if args.feed != "-" else Path.cwd())
    limits = {option: getattr(args, flag) for option, flag in _LOADER_FLAGS.items()}
    try:
        return ImageLoader(root, allow_schemes=set(args.allow_scheme), **limits)
    except ImageOptionError as error:
        raise UserError(str(error)) from None


def _preflight(args: argparse.Namespace) -> None:
    try:
        if not is_stdout(args.output):
            check_output_path(Path(args.output), [args.feed])
        with FeedReader(args.feed, args.format) as reader:
            ColumnMap.from_args(args.column).resolve(reader.columns)
    except _INPUT_ERRORS as error:
        raise UserError(str(error)) from None


def _spec(args: argparse.Namespace, *, absolute: bool = False) -> Any:
    """The :class:`~multimodal_cat.distributed.spec.PredictorSpec` the flags ask for;
    ``absolute``: files named by absolute paths (for workers running in another folder)."""
    from multimodal_cat.distributed.spec import PredictorSpec


    def where(name: str | None) -> str | None:
        return str(Path(name).resolve()) if absolute and name and Path(name).exists() else name

    return PredictorSpec(
        model=where(args.model),
        taxonomy=where(args.taxonomy) if args.taxonomy else (None if args.model else "shopify"),
        dry_run=args.dry_run,
        bf16=args.bf16,
        num_threads=args.threads,
        image_encoder=where(args.image_encoder),
        text_encoder=where(getattr(args, "text_encoder", None)) or "minilm",
        adapt=args.adapt,
        map_to=tuple(where(t) for t in args.map_to),
    )


def _build_predictor(args: argparse.Namespace) -> tuple[Any, Any]:
    """The bare predictor, and the mapper for ``--map-to`` (``None`` without targets); the
    flags are the same for ``serve``."""
    built = _build(args, _spec(args))
    return built.predictor, built.mapper


def _build(args: argparse.Namespace, spec: Any) -> BuiltPredictor:
    """What ``spec`` builds; mistakes in the flags become a :class:`UserError`."""
    try:
        built = spec.build()
    except ImportError as error:
        raise UserError(
            f"no categorizer is available in this installation ({error}); try --dry-run"
        ) from None
    except (ValueError, KeyError, OSError) as error:  # OSError: a checkpoint that cannot load
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise UserError(f"cannot build the predictor: {message}") from None
    if not args.dry_run:
        args.map_to = built.names  # the output's columns: a mapping file's tree by its short name
    return built


def _merge(args: argparse.Namespace) -> int:
    if is_stdout(args.output):
        raise UserError("--merge-shards needs an output file; -o - writes to stdout")
    if args.merge_shards < 1:
        raise UserError(f"--merge-shards must be at least 1, got {args.merge_shards}")
    try:
        output_format(args.output)
        rows = merge_shards(args.output, args.merge_shards)
    except (ValueError, ShardError) as error:
        raise UserError(str(error)) from None
    info(f"merged {args.merge_shards} shards: {rows:,} rows -> {shown(args.output)}")
    return 0
