"""``multimodal-cat review`` and ``multimodal-cat suggest``: people in the loop, through Label Studio.

Example:
    $ multimodal-cat categorize feed.csv --taxonomy shopify -o out.csv
    $ multimodal-cat review tasks feed.csv out.csv --taxonomy shopify --below 0.8 -o tasks.json
    $ #   (local images: add --document-root DIR, the LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT of the server)
    $ multimodal-cat review config --taxonomy shopify -o labeling.xml   # or --model CKPT: its tree
    $ multimodal-cat review import export.json --taxonomy shopify -o corrections.jsonl
    $ multimodal-cat suggest pool.csv --taxonomy shopify -n 200 --exclude corrections.jsonl -o next.json

Exit codes: 0 done; 2 a mistake in the command or input (unknown category in an export, a
file that cannot be read...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multimodal_cat._progress import info
from multimodal_cat.cli.checks import check_file, check_model, check_taxonomy
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.output import output_path, shown
from multimodal_cat.cli.types import add_column_argument, probability
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
    _add_tree(tasks)
    _add_common(tasks)
    tasks.add_argument("--below", type=probability, metavar="P",
                       help="queue rows whose confidence is below P (default: rows marked "
                       "needs_review, or every row when the output has no such column)")
    tasks.set_defaults(func=run_tasks)
    config = steps.add_parser("config", help="write the labeling configuration (XML) for a tree")
    _add_tree(config)
    config.add_argument("--no-images", action="store_true", help="tasks have no image")
    config.add_argument("-o", "--output", required=True, help="XML file to write; - for stdout")
    config.set_defaults(func=run_config)
    answers = steps.add_parser("import", help="read a Label Studio JSON export as corrections")
    answers.add_argument("export", help="Label Studio's JSON export")
    _add_tree(answers)
    answers.add_argument("-o", "--output", required=True,
                         help="corrections file (JSON lines; appended, the latest answer wins); - for stdout")
    answers.set_defaults(func=run_import)
    suggest = subparsers.add_parser(
        "suggest",
        help="pick the unlabelled products whose labels would help most",
        description="Rank unlabelled products by uncertainty and typicality, spread over categories "
        "and the embedding space, and write the best N as Label Studio tasks.",
    )
    suggest.add_argument("feed", help="the unlabelled products")
    _add_tree(suggest, model_help="trained model folder or hub id: scores the pool (from the text "
               "and the images the feed names) and gives the tree")
    _add_common(suggest)
    suggest.add_argument("-n", type=int, default=100, help="how many (default: %(default)s)")
    suggest.add_argument("--text-encoder", default="minilm",
                         help="embeds titles to spread the picks (default: %(default)s)")
    suggest.set_defaults(func=run_suggest)


def _add_tree(p: argparse.ArgumentParser, model_help: str = "") -> None:
    """``--taxonomy NAME`` or ``--model CKPT``: where the tree of categories comes from."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--taxonomy", help="shipped name or tree file")
    which.add_argument("--model", metavar="CKPT",
                       help=model_help or "trained model folder or hub id: use the tree it predicts into")


def _add_common(p: argparse.ArgumentParser) -> None:
    add_column_argument(p)
    p.add_argument("--exclude", metavar="CORRECTIONS", help="leave out products already reviewed")
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="when nothing is reviewed yet (no --exclude match), pick products that cover the "
        "pool's clusters instead of the most uncertain ones (a first round)",
    )
    p.add_argument("-o", "--output", required=True,
                   help="tasks file (JSON) to import into Label Studio; - for stdout")
    p.add_argument("--image-root", metavar="DIR",
                   help="folder for relative image paths (default: the feed's folder)")
    p.add_argument("--document-root", metavar="DIR",
                   help="the LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT Label Studio serves local images "
                   "from: tasks name local images as /data/local-files/?d=PATH under it (default: "
                   "that environment variable, else the image root); http(s) images pass through")


_FILES = {  # argument -> what it is, in messages
    "feed": "feed file",
    "predictions": "predictions file",
    "export": "Label Studio export",
    "exclude": "--exclude corrections file",
}


def check_paths(args: argparse.Namespace) -> None:
    """The files, tree and model a review command names, checked before any heavy import."""
    for name, what in _FILES.items():
        check_file(getattr(args, name, None), what)
    check_taxonomy(getattr(args, "taxonomy", None), "--taxonomy")
    check_model(getattr(args, "model", None), "--model")


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


def _taxonomy(args: argparse.Namespace):
    """The tree of ``--taxonomy``, or the one a ``--model`` checkpoint predicts into."""
    from multimodal_cat.taxonomy import Taxonomy

    if not args.taxonomy and not args.model:
        raise UserError("give the tree the products are categorized in: --taxonomy NAME_OR_FILE, "
                        "or --model CKPT for a trained model's tree")
    try:
        if args.model:
            from multimodal_cat.predictors.checkpoint import checkpoint_taxonomy

            return checkpoint_taxonomy(args.model)
        return Taxonomy.load(args.taxonomy)
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
    from multimodal_cat.review.join import join_predictions

    check_paths(args)
    taxonomy, skip = _taxonomy(args), _excluded(args.exclude)
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
    _write_tasks(args, queued, predictions, reasons)
    info(f"{len(queued):,} of {total:,} products queued for review -> {shown(args.output)}")
    return 0


def _image_root(args: argparse.Namespace) -> Path:
    return Path(args.image_root) if args.image_root else Path(args.feed).parent


def _write_tasks(args: argparse.Namespace, products: list[Any], predictions: list[Any],
                 reasons: list[str]) -> None:
    """Write the tasks with images Label Studio can show; say once what it needs to show them."""
    from multimodal_cat.review import to_tasks, write_tasks
    from multimodal_cat.review.task_images import TaskImages

    images = TaskImages(_image_root(args), args.document_root)
    tasks = to_tasks(products, predictions, reasons=reasons, images=images)
    with _writing(args.output), output_path(args.output, ".json") as output:
        write_tasks(tasks, output)
    problems = [t["data"]["image_error"] for t in tasks if "image_error" in t["data"]]
    if problems:
        print(f"{len(problems):,} of {len(tasks):,} tasks have no image: {problems[0]}", file=sys.stderr)
    served = [p.image_ref for p, t in zip(products, tasks, strict=True) if "image_error" not in t["data"]]
    note = images.instructions(served)
    if note:
        print(note, file=sys.stderr)


def _reason(row: dict[str, Any], below: float | None) -> str | None:
    confidence = _confidence(row)
    if not math.isfinite(confidence):  # a broken model: always a person's job
        return f"confidence is not a number ({confidence})"
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

    tree = _taxonomy(args)
    config = labeling_config(tree, images=not args.no_images)
    with _writing(args.output), output_path(args.output, ".xml") as output:
        output.write_text(config, encoding="utf-8")
    info(f"labeling configuration for {args.model or args.taxonomy} ({len(tree):,} categories) "
         f"-> {shown(args.output)}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Read Label Studio's export and append the answers to the corrections file."""
    from collections import Counter

    from multimodal_cat.review import read_export, write_corrections

    check_paths(args)
    try:
        corrections = read_export(args.export, _taxonomy(args))
    except (MultimodalCatError, OSError) as err:
        raise UserError(str(err)) from None
    with _writing(args.output), output_path(args.output, ".jsonl") as output:
        write_corrections(corrections, output)
    counts = Counter(c.action for c in corrections)
    summary = ", ".join(f"{counts[a]:,} {a}" for a in ("accepted", "changed", "skipped"))
    info(f"{len(corrections):,} answers ({summary}) -> {shown(args.output)}")
    return 0




def run_suggest(args: argparse.Namespace) -> int:
    """Score the pool, pick the N most useful products, write them as tasks.

    The pool is streamed in batches (:func:`~multimodal_cat.review.selection.score_pool`):
    memory holds a few numbers per product, never a (products x categories) matrix nor every
    title vector; the picks are read back from the feed at the end.
    """
    if args.n < 1:
        raise UserError(f"-n must be at least 1; found {args.n}")
    check_paths(args)  # before the heavy imports: a wrong path is answered at once
    from multimodal_cat.encoders import EmbeddingCache, TextEncoder, encode_cached
    from multimodal_cat.predictors.build import build_predictor
    from multimodal_cat.review.selection import gather_vectors, medoids, score_pool, suggest_scored

    try:
        text_encoder = TextEncoder.from_name(args.text_encoder)
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(f"--text-encoder: {err}") from None
    skip = _excluded(args.exclude)
    ids, named = [], 0
    for product in _pool(args):  # one pass for the ids and the count of named images
        ids.append(product.id)
        named += bool(product.image_ref)
    if not ids:
        raise UserError(f"{args.feed}: no readable products")
    try:
        predictor = build_predictor(model=args.model, taxonomy=args.taxonomy or "shopify")
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(str(err)) from None
    loader = _image_loader(args, predictor, named)
    info(f"scoring {len(ids):,} products")
    encoder, cache = text_encoder, EmbeddingCache()

    def embed(batch: list[Any]) -> Any:  # one cache for every batch (one database connection)
        texts = [" ".join(filter(None, (p.title, p.brand, p.description[:200]))) for p in batch]
        return encode_cached(encoder, texts, cache=cache, normalize=True, noun="title")

    scorer = _ImageScorer(predictor, loader)
    try:
        exclude = [i in skip for i in ids]
        if args.cold_start and not any(exclude):  # nothing reviewed yet: cover the pool
            picks = medoids(gather_vectors(_pool(args), range(len(ids)), embed), args.n).tolist()
            reasons = ["suggested: typical of a cluster of the pool (cold start)"] * len(picks)
        else:
            scores = score_pool(lambda: _pool(args), len(ids), scorer, embed, progress=True)
            vectors_of = lambda rows: gather_vectors(_pool(args), rows, embed)  # noqa: E731
            picks = suggest_scored(scores, vectors_of, args.n, exclude=exclude).tolist()
            reasons = [f"suggested: uncertainty {1 - float(scores.confidence[i]):.2f}" for i in picks]
        wanted = set(picks)
        found = {position: p for position, p in enumerate(_pool(args)) if position in wanted}
        chosen = [found[position] for position in picks]  # best first
        if loader is not None:
            from multimodal_cat.inputs import attach_images

            attach_images(chosen, loader)
        predictions = predictor.predict(chosen)
    finally:
        cache.close()
        if loader is not None:
            loader.close()
    scorer.say_failures(named)
    _write_tasks(args, chosen, predictions, reasons)
    info(f"{len(chosen):,} products suggested for labelling -> {shown(args.output)}")
    return 0


def _image_loader(args: argparse.Namespace, predictor: Any, named: int) -> Any:
    """An image loader when the predictor reads the images the pool names (``named`` of them);
    else ``None``, saying once, plainly, that the products are scored from their text only."""
    if not named:
        return None
    towers = getattr(getattr(predictor, "embedder", None), "towers", {})
    if "image" not in towers:
        what = "this model has no image tower" if args.model else "zero-shot over --taxonomy reads text only"
        print(f"{named:,} products name an image, but {what}: scoring from text only", file=sys.stderr)
        return None
    from multimodal_cat.feeds.images import ImageLoader

    return ImageLoader(_image_root(args))


class _ImageScorer:
    """``predict_proba`` on a batch with its images loaded, then dropped (flat memory); counts
    the images that could not be used."""

    def __init__(self, predictor: Any, loader: Any) -> None:
        self.predictor, self.loader = predictor, loader
        self.failed, self.first = 0, ""

    def __call__(self, batch: list[Any]) -> Any:
        from multimodal_cat.inputs import attach_images

        if self.loader is not None:
            problems = [problem for _, problem in attach_images(batch, self.loader)]
            self.failed, self.first = self.failed + len(problems), self.first or (problems[0] if problems else "")
        try:
            return self.predictor.predict_proba(batch)
        finally:
            for product in batch:
                product.image = None

    def say_failures(self, named: int) -> None:
        if self.failed:
            print(f"{self.failed:,} of {named:,} images could not be loaded (e.g. {self.first}): "
                  "those products are scored from their text only", file=sys.stderr)


def _pool(args: argparse.Namespace) -> Iterator[Any]:
    """The readable products of the pool, streamed from the feed (one pass per call)."""
    from multimodal_cat.feeds.columns import read_products

    try:
        for _, product, _ in read_products(args.feed, args.column):
            if product is not None:
                yield product
    except (MultimodalCatError, OSError) as err:
        raise UserError(str(err)) from None


def add_routing_arguments(p: argparse.ArgumentParser) -> None:
    """``categorize``'s review flags: mark rows ``needs_review`` with a ``review_reason``."""
    group = p.add_argument_group("review routing")
    which = group.add_mutually_exclusive_group()
    which.add_argument("--review-below", type=probability, metavar="P",
                       help="rows under confidence P need review (plus seller-category disagreements)")
    which.add_argument("--target-precision", type=probability, metavar="P",
                       help="auto-accept only at the confidence where held-out rows reach precision P "
                       "(a checkpoint's stored thresholds, a tree's from multimodal-cat calibrate, "
                       "or --holdout)")
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
    from multimodal_cat.review.routing import StoredThresholdError, stored_router

    try:
        return stored_router(predictor, args.target_precision)
    except StoredThresholdError as error:
        raise UserError(
            f"{error}: give --holdout LABELLED_FEED to choose it on labelled products, run "
            "multimodal-cat calibrate on reviewed answers, or give --review-below P"
        ) from None


def _holdout_threshold(args: argparse.Namespace, predictor: Any) -> tuple[float, str]:
    from multimodal_cat.evaluation import evaluate_predictions
    from multimodal_cat.feeds.columns import ColumnMap, row_to_product
    from multimodal_cat.feeds.read import FeedReader
    from multimodal_cat.review.selection import predict_in_batches

    label = args.holdout_label_column
    try:
        with FeedReader(args.holdout) as reader:  # one pass: each row's product and its label
            if label not in reader.columns:
                raise UserError(
                    f"{args.holdout}: expected a category column {label!r}; "
                    f"found {', '.join(reader.columns)}"
                )
            columns = ColumnMap.from_args(args.column).resolve(reader.columns, answers={label})
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
        report = evaluate_predictions(predict_in_batches(predictor, products), labels, predictor.taxonomy,
                                      target_precisions=(args.target_precision,))
    except (MultimodalCatError, OSError, ValueError) as err:
        raise UserError(str(err)) from None
    chosen = report.auto_accept[args.target_precision]
    source = (f"{args.target_precision:.0%} precision on {args.holdout}: measured "
              f"{chosen['precision']:.3f}, {chosen['share']:.0%} of its rows accepted")
    return chosen["threshold"], source
