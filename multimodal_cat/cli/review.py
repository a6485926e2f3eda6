"""``multimodal-cat review`` and ``multimodal-cat suggest``: people in the loop, through Label Studio.

Example:
    $ multimodal-cat categorize feed.csv --taxonomy shopify -o out.csv
    $ multimodal-cat review tasks feed.csv out.csv --taxonomy shopify --below 0.8 -o tasks.json
    $ multimodal-cat review config --taxonomy shopify -o labeling.xml   # create the project with it
    $ multimodal-cat review import export.json --taxonomy shopify -o corrections.jsonl
    $ multimodal-cat suggest pool.csv --taxonomy shopify -n 200 --exclude corrections.jsonl -o next.json

Exit codes: 0 done; 2 a mistake in the command or input (unknown category in an export, a
file that cannot be read...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.types import probability
from multimodal_cat.errors import MultimodalCatError

MIN_HOLDOUT_ROWS = 100  # fewer labelled rows than this: the chosen threshold is warned about


def add_parser(subparsers: Any) -> None:
    """Add the ``review`` sub-command (tasks, config, import) and ``suggest``."""
    review = subparsers.add_parser(
        "review",
        help="send uncertain products to Label Studio and read the answers back",
        description="Review queues as Label Studio tasks, its labeling configuration, and its "
        "JSON export read back as corrections.",
    )
    steps = review.add_subparsers(dest="step", metavar="STEP", required=True)
    tasks = steps.add_parser("tasks", help="write Label Studio tasks for the products that need review")
    tasks.add_argument("feed", help="the feed that was categorized")
    tasks.add_argument("predictions", help="the output of `multimodal-cat categorize`")
    _add_common(tasks)
    tasks.add_argument("--below", type=probability, metavar="P",
                       help="queue rows whose confidence is below P (default: rows marked "
                       "needs_review, or every row when the output has no such column)")
    tasks.set_defaults(func=run_tasks)
    config = steps.add_parser("config", help="write the labeling configuration (XML) for a tree")
    config.add_argument("--taxonomy", required=True, help="shipped name or tree file")
    config.add_argument("--no-images", action="store_true", help="tasks have no image")
    config.add_argument("-o", "--output", required=True, help="XML file to write")
    config.set_defaults(func=run_config)
    answers = steps.add_parser("import", help="read a Label Studio JSON export as corrections")
    answers.add_argument("export", help="Label Studio's JSON export")
    answers.add_argument("--taxonomy", required=True, help="shipped name or tree file")
    answers.add_argument("-o", "--output", required=True,
                         help="corrections file (JSON lines; appended, the latest answer wins)")
    answers.set_defaults(func=run_import)
    suggest = subparsers.add_parser(
        "suggest",
        help="pick the unlabelled products whose labels would help most",
        description="Rank unlabelled products by uncertainty and typicality, spread over categories "
        "and the embedding space, and write the best N as Label Studio tasks.",
    )
    suggest.add_argument("feed", help="the unlabelled products")
    which = suggest.add_mutually_exclusive_group()
    which.add_argument("--model", help="trained model folder or hub id")
    _add_common(suggest, taxonomy_group=which)
    suggest.add_argument("-n", type=int, default=100, help="how many (default: %(default)s)")
    suggest.add_argument("--text-encoder", default="minilm",
                         help="embeds titles to spread the picks (default: %(default)s)")
    suggest.set_defaults(func=run_suggest)


def _add_common(p: argparse.ArgumentParser, taxonomy_group: Any = None) -> None:
    (taxonomy_group or p).add_argument("--taxonomy", help="shipped name or tree file")
    p.add_argument("--column", action="append", default=[], metavar="FIELD=NAME",
                   help="input column for a field, as in `categorize`")
    p.add_argument("--exclude", metavar="CORRECTIONS", help="leave out products already reviewed")
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="when nothing is reviewed yet (no --exclude match), pick products that cover the "
        "pool's clusters instead of the most uncertain ones (a first round)",
    )
    p.add_argument("-o", "--output", required=True, help="tasks file (JSON) to import into Label Studio")


@contextlib.contextmanager
def _writing(path: str) -> Iterator[None]:
    """Turn a failed write of ``path`` (missing folder, a folder, a full disk) into one sentence."""
    try:
        yield
    except MultimodalCatError as err:
        raise UserError(str(err)) from None
    except OSError as err:
        folder = Path(path).parent
        if isinstance(err, FileNotFoundError) and not folder.is_dir():
            why = f"its folder {str(folder)!r} does not exist"
        elif isinstance(err, IsADirectoryError) or Path(path).is_dir():
            why = "it is a folder; name a file"
        else:
            why = err.strerror or str(err)
        raise UserError(f"cannot write {path!r}: {why}") from None


def _taxonomy(name: str | None):
    from multimodal_cat.taxonomy import Taxonomy

    if not name:
        raise UserError("give the tree the products are categorized in (--taxonomy)")
    try:
        return Taxonomy.load(name)
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(str(err)) from None


def _excluded(path: str | None) -> set[str]:
    from multimodal_cat.review import read_corrections, reviewed_ids

    if not path:
        return set()
    try:
        return reviewed_ids(read_corrections(path))
    except (MultimodalCatError, OSError) as err:
        raise UserError(str(err)) from None


def _products(feed: str, columns: list[str]) -> dict[int, Any]:
    from multimodal_cat.feeds.columns import read_products

    try:
        return {n: p for n, p, _ in read_products(feed, columns) if p is not None}
    except (MultimodalCatError, OSError) as err:
        raise UserError(str(err)) from None


def run_tasks(args: argparse.Namespace) -> int:
    """Join the feed with its categorize output (by row and id); queue the rows that need a person."""
    from multimodal_cat.review import to_tasks, write_tasks
    from multimodal_cat.review.join import join_predictions

    taxonomy, skip = _taxonomy(args.taxonomy), _excluded(args.exclude)
    try:
        pairs, total = join_predictions(
            args.feed, args.predictions, columns=args.column,
            wanted=lambda row: _reason(row, args.below) is not None,
        )
        pairs = [(product, row) for product, row in pairs if product.id not in skip]
        predictions = [_prediction(row, taxonomy) for _, row in pairs]
    except (MultimodalCatError, OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(str(err)) from None
    queued = [product for product, _ in pairs]
    reasons = [_reason(row, args.below) or "" for _, row in pairs]
    with _writing(args.output):
        write_tasks(to_tasks(queued, predictions, reasons=reasons), args.output)
    print(f"{len(queued):,} of {total:,} products queued for review -> {args.output}")
    return 0


def _reason(row: dict[str, Any], below: float | None) -> str | None:
    confidence = _confidence(row)
    if below is not None:
        return f"confidence {confidence:.2f} < {below:.2f}" if confidence < below else None
    flag = row.get("needs_review")
    if flag is None:
        return "review requested"
    if str(flag).lower() in ("true", "1", "yes"):
        return str(row.get("review_reason") or "needs review")
    return None


def _confidence(row: dict[str, Any]) -> float:
    value = row.get("confidence")
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        raise UserError(f"row {row.get('row')}: expected a number in confidence; found {value!r}") from None


def _prediction(row: dict[str, Any], taxonomy: Any):
    from multimodal_cat.predictions import CategoryScore, Prediction

    alternatives = row.get("alternatives") or []
    try:
        if isinstance(alternatives, str):
            alternatives = json.loads(alternatives) if alternatives else []
        scores = [CategoryScore(str(a["id"]), str(a["path"]), float(a["score"])) for a in alternatives]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"row {row.get('row')}: expected alternatives as a JSON list of {{id, path, score}}; "
            f"found {str(row.get('alternatives'))[:80]!r}"
        ) from None
    return Prediction(
        category_id=str(row["category_id"]),
        category_path=str(row["category_path"]),
        confidence=_confidence(row),
        alternatives=scores,
    )


def run_config(args: argparse.Namespace) -> int:
    """Write the labeling configuration to create the Label Studio project with."""
    from multimodal_cat.review import labeling_config

    config = labeling_config(_taxonomy(args.taxonomy), images=not args.no_images)
    with _writing(args.output):
        Path(args.output).write_text(config, encoding="utf-8")
    print(f"labeling configuration for {args.taxonomy} -> {args.output}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Read Label Studio's export and append the answers to the corrections file."""
    from collections import Counter

    from multimodal_cat.review import read_export, write_corrections

    try:
        corrections = read_export(args.export, _taxonomy(args.taxonomy))
    except (MultimodalCatError, OSError) as err:
        raise UserError(str(err)) from None
    with _writing(args.output):
        write_corrections(corrections, args.output)
    counts = Counter(c.action for c in corrections)
    summary = ", ".join(f"{counts[a]:,} {a}" for a in ("accepted", "changed", "skipped"))
    print(f"{len(corrections):,} answers ({summary}) -> {args.output}")
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    """Score the pool, pick the N most useful products, write them as tasks."""
    import numpy as np

    from multimodal_cat.encoders import TextEncoder, encode_cached
    from multimodal_cat.predictors.build import build_predictor
    from multimodal_cat.review import suggest, to_tasks, write_tasks

    if args.n < 1:
        raise UserError(f"-n must be at least 1; found {args.n}")
    try:
        text_encoder = TextEncoder.from_name(args.text_encoder)
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(f"--text-encoder: {err}") from None
    products = list(_products(args.feed, args.column).values())
    skip = _excluded(args.exclude)
    if not products:
        raise UserError(f"{args.feed}: no readable products")
    try:
        predictor = build_predictor(model=args.model, taxonomy=args.taxonomy or "shopify")
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(str(err)) from None
    print(f"scoring {len(products):,} products", file=sys.stderr)
    proba = predictor.predict_proba(products)
    texts = [" ".join(filter(None, (p.title, p.brand, p.description[:200]))) for p in products]
    vectors = encode_cached(text_encoder, texts, normalize=True, progress=True)
    exclude = np.array([p.id in skip for p in products])
    picks = suggest(proba, vectors, args.n, exclude=exclude, cold_start=args.cold_start)
    chosen = [products[i] for i in picks]
    predictions = predictor.predict(chosen)
    if args.cold_start and not exclude.any():
        reasons = ["suggested: typical of a cluster of the pool (cold start)"] * len(picks)
    else:
        reasons = [f"suggested: uncertainty {1 - float(proba[i].max()):.2f}" for i in picks]
    with _writing(args.output):
        write_tasks(to_tasks(chosen, predictions, reasons=reasons), args.output)
    print(f"{len(chosen):,} products suggested for labelling -> {args.output}")
    return 0


def add_routing_arguments(p: argparse.ArgumentParser) -> None:
    """``categorize``'s review flags: mark rows ``needs_review`` with a ``review_reason``."""
    group = p.add_argument_group("review routing")
    which = group.add_mutually_exclusive_group()
    which.add_argument("--review-below", type=probability, metavar="P",
                       help="rows under confidence P need review (plus seller-category disagreements)")
    which.add_argument("--target-precision", type=probability, metavar="P",
                       help="auto-accept only at the confidence where held-out rows reach precision P "
                       "(a checkpoint's stored thresholds, or --holdout)")
    group.add_argument("--holdout", metavar="FEED",
                       help="labelled products (same columns + a category column) to choose the "
                       "--target-precision threshold on")
    group.add_argument("--holdout-label-column", default="category", metavar="NAME",
                       help="the holdout's category column, ids or full paths (default: %(default)s)")


def build_router(args: argparse.Namespace, predictor: Any) -> Any:
    """The :class:`~multimodal_cat.review.routing.ReviewRouter` the flags ask for, or ``None``."""
    from multimodal_cat.review.routing import ReviewRouter

    if args.review_below is not None:
        return ReviewRouter(predictor.taxonomy, args.review_below, "--review-below")
    if args.target_precision is None:
        if args.holdout:
            raise UserError("--holdout is for --target-precision; give both")
        return None
    if args.target_precision == 0.0:
        raise UserError("--target-precision must be above 0 (every row would be auto-accepted)")
    if args.holdout:
        return ReviewRouter(predictor.taxonomy, *_holdout_threshold(args, predictor))
    stored = getattr(getattr(getattr(predictor, "model", None), "config", None), "confidence_thresholds", None)
    key = str(args.target_precision)
    if stored and key in stored:
        source = f"{args.target_precision:.0%} precision on the checkpoint's held-out rows"
        return ReviewRouter(predictor.taxonomy, _stored_threshold(stored[key], key), source)
    known = f" (it stores {', '.join(sorted(stored))})" if stored else ""
    raise UserError(
        f"no held-out threshold for precision {args.target_precision} in this predictor{known}: "
        "give --holdout LABELLED_FEED to choose it on labelled products, or --review-below P"
    )


def _stored_threshold(value: Any, key: str) -> float:
    """A checkpoint's stored threshold, refused unless it is a number in [0, 1]."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 <= threshold <= 1.0:  # NaN fails too
        raise UserError(
            f"the checkpoint's threshold for precision {key} is {value!r}; expected a number "
            "between 0 and 1 (config.json confidence_thresholds): give --review-below P or --holdout"
        )
    return threshold


def _holdout_threshold(args: argparse.Namespace, predictor: Any) -> tuple[float, str]:
    from multimodal_cat.evaluation import evaluate_predictions
    from multimodal_cat.feeds.columns import ColumnMap, row_to_product
    from multimodal_cat.feeds.read import FeedReader

    label = args.holdout_label_column
    try:
        with FeedReader(args.holdout) as reader:  # one pass: each row's product and its label
            if label not in reader.columns:
                raise UserError(
                    f"{args.holdout}: expected a category column {label!r}; "
                    f"found {', '.join(reader.columns)}"
                )
            columns = ColumnMap.from_args(args.column).resolve(reader.columns)
            rows = [r for r in reader if not r.error]
        if len(rows) < MIN_HOLDOUT_ROWS:
            print(
                f"warning: {args.holdout} has {len(rows):,} labelled rows; a threshold chosen on "
                f"fewer than {MIN_HOLDOUT_ROWS} is unreliable (its measured precision can read "
                "1.000 by chance): give a larger holdout",
                file=sys.stderr,
            )
        products = [row_to_product(r.values, columns, r.number) for r in rows]
        labels = [r.values.get(label, "") for r in rows]
        report = evaluate_predictions(predictor.predict(products), labels, predictor.taxonomy,
                                      target_precisions=(args.target_precision,))
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(str(err)) from None
    chosen = report.auto_accept[args.target_precision]
    source = (f"{args.target_precision:.0%} precision on {args.holdout}: measured "
              f"{chosen['precision']:.3f}, {chosen['share']:.0%} of its rows accepted")
    return chosen["threshold"], source
