"""``multimodal-cat calibrate``: fit a tree's confidence and auto-accept thresholds from reviews.

Reads reviewed answers (a Label Studio JSON export, a corrections file written by
``multimodal-cat review import``, or any labelled feed: CSV, TSV, JSON lines, Parquet, Excel with a category
column), runs the zero-shot engine on the reviewed products, fits the tree's confidence
temperature and the auto-accept threshold of each target precision, and stores them where
``categorize --target-precision``, ``serve`` and ``Categorizer.predict`` find them. It prints
how many reviews each threshold rests on and the precision's 95% interval, and says "too few
reviews" instead of claiming a precision the reviews cannot support.

With ``--model CKPT`` it refits a trained checkpoint's thresholds per input kind instead
(:mod:`multimodal_cat.review.checkpoint_thresholds`), from a labelled feed whose rows carry the
products as they were sent (title, photo...).

Example:
    $ multimodal-cat calibrate reviewed.csv --taxonomy shopify --label-column category
    $ multimodal-cat categorize feed.csv --taxonomy shopify --target-precision 0.95 -o out.csv
    $ multimodal-cat calibrate reviewed_newer.csv --model my-checkpoint --label-column category
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from multimodal_cat._progress import info
from multimodal_cat.cli.checks import check_file, check_taxonomy
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.types import add_column_argument, probability


def add_parser(subparsers: Any) -> None:
    """Add the ``calibrate`` sub-command."""
    p = subparsers.add_parser(
        "calibrate",
        help="fit a tree's confidence and auto-accept thresholds from reviewed answers",
        description="Fit the zero-shot confidence and auto-accept thresholds of a tree from "
        "reviewed answers, and store them for categorize --target-precision and serve.",
    )
    p.add_argument(
        "reviews",
        metavar="REVIEWS",
        help="a Label Studio JSON export, a corrections file (review import) or a labelled feed "
        "(CSV, TSV, JSON lines, Parquet, Excel)",
    )
    p.add_argument("--taxonomy", default="shopify", help="the tree (default: %(default)s)")
    p.add_argument(
        "--label-column",
        default="category",
        metavar="NAME",
        help="a labelled feed's category column, ids or full paths (default: %(default)s)",
    )
    p.add_argument(
        "--target-precision",
        type=probability,
        action="append",
        metavar="P",
        help="precision to choose a threshold for (repeatable; default 0.9, 0.95 and 0.98)",
    )
    p.add_argument(
        "--model",
        metavar="CKPT",
        help="a trained checkpoint folder: refit its auto-accept thresholds per input kind "
        "(title + photo, title, photo) on the reviewed products, photos included, and write "
        "them into its config.json (instead of a zero-shot tree's calibration)",
    )
    p.add_argument(
        "--text-encoder",
        default="minilm",
        metavar="MODEL",
        help="zero-shot: the text encoder the categorize job uses (its calibration is stored "
        "per tree and encoder; default: %(default)s)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="fit and print, but store nothing"
    )
    add_column_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit, print and store; returns the exit code."""
    check_file(args.reviews, "reviews file")
    check_taxonomy(args.taxonomy, "--taxonomy")
    targets = tuple(args.target_precision or (0.9, 0.95, 0.98))
    if any(t <= 0.0 for t in targets):
        raise UserError("--target-precision must be above 0 (every row would be auto-accepted)")
    from multimodal_cat.errors import MultimodalCatError
    from multimodal_cat.predictors.build import build_predictor
    from multimodal_cat.zero_shot.reviewed import calibrate_from_reviews

    if args.model:
        if args.text_encoder != "minilm":
            raise UserError("--text-encoder is for a zero-shot tree's calibration; a trained model "
                            "has its own text tower (give --model or --text-encoder, not both)")
        return _run_checkpoint(args, targets)
    try:
        products, labels = _read_reviews(args)
        predictor = build_predictor(taxonomy=args.taxonomy, text_encoder=args.text_encoder)
        fit = calibrate_from_reviews(
            predictor, products, labels, targets=targets, store=not args.dry_run,
            source=str(args.reviews),
        )  # fmt: skip
    except (MultimodalCatError, OSError, ValueError) as error:
        raise UserError(str(error)) from None
    return _report(fit.describe(), args.dry_run)


def _report(lines: list[str], dry_run: bool) -> int:
    """Print what was fitted (and that nothing was stored on a dry run); the exit code."""
    for line in lines:
        info(line)
    if dry_run:
        info("dry run: nothing stored")
    return 0


def _run_checkpoint(args: argparse.Namespace, targets: tuple[float, ...]) -> int:
    """``--model``: refit a checkpoint's thresholds per input kind on a labelled feed."""
    from multimodal_cat.errors import MultimodalCatError
    from multimodal_cat.inputs import to_products
    from multimodal_cat.predictors.checkpoint import ModelPredictor
    from multimodal_cat.review.checkpoint_thresholds import (
        fit_checkpoint_thresholds,
        store_checkpoint_thresholds,
    )

    if not Path(args.model, "config.json").is_file():
        raise UserError(f"--model: expected a checkpoint folder with a config.json; found {args.model!r}")
    try:
        products = to_products(Path(args.reviews), columns=args.column, answers=args.label_column)
        labelled = [p for p in products if str(p.extra.get(args.label_column) or "").strip()]
        if not labelled:
            raise UserError(f"{args.reviews}: no row has a category in column {args.label_column!r}")
        fit = fit_checkpoint_thresholds(
            ModelPredictor.from_pretrained(args.model), labelled,
            [str(p.extra[args.label_column]) for p in labelled], targets=targets,
        )  # fmt: skip
        if not args.dry_run:
            store_checkpoint_thresholds(args.model, fit, source=str(args.reviews))
    except (MultimodalCatError, OSError, ValueError) as error:
        raise UserError(str(error)) from None
    return _report(fit.describe(), args.dry_run)


def _read_reviews(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """The reviewed products and their categories, from a corrections file or a labelled feed."""
    from multimodal_cat.feeds.columns import ColumnMap, row_to_product
    from multimodal_cat.feeds.read import FeedReader

    if Path(args.reviews).suffix.lower() == ".json":  # a Label Studio export
        from multimodal_cat.review.labelstudio import read_export
        from multimodal_cat.taxonomy import Taxonomy

        return _from_corrections(read_export(args.reviews, Taxonomy.load(args.taxonomy)), args.reviews)
    with FeedReader(args.reviews) as reader:
        columns = list(reader.columns)
        if {"product_id", "action"} <= set(columns):
            from multimodal_cat.review.corrections import read_corrections

            return _from_corrections(read_corrections(args.reviews), args.reviews)
        if args.label_column not in columns:
            raise UserError(
                f"{args.reviews}: expected a category column {args.label_column!r} (or a "
                f"corrections file with product_id and action); found {', '.join(columns)}"
            )
        mapping = ColumnMap.from_args(args.column).resolve(columns, answers={args.label_column})
        rows = [r for r in reader if not r.error]
    labelled = [r for r in rows if str(r.values.get(args.label_column) or "").strip()]
    products = [row_to_product(r.values, mapping, r.number) for r in labelled]
    return products, [str(r.values[args.label_column]) for r in labelled]


def _from_corrections(corrections: list[Any], path: str) -> tuple[list[Any], list[str]]:
    """Accepted and changed corrections that carry their product's text."""
    from multimodal_cat.products import Product

    kept = [c for c in corrections if c.label is not None and c.has_product]
    if not kept:
        raise UserError(
            f"{path}: no reviewed answer carries its product's text (title, description): "
            "give the tasks' products a title (review tasks does), or a labelled feed"
        )
    products = [
        Product(id=c.product_id, title=c.title, description=c.description, brand=c.brand)
        for c in kept
    ]
    return products, [c.category_id for c in kept]
