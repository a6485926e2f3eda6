"""``multimodal-cat index build|add|remove``, ``similar`` and ``audit``: catalog quality control
and visual search from one catalog index (:mod:`multimodal_cat.catalog`).

Example:
    $ multimodal-cat index build styles.csv -o catalog.idx --category-column \\
        masterCategory,subCategory,articleType
    $ multimodal-cat similar catalog.idx --image photo.jpg -k 10 --within "Footwear"
    $ multimodal-cat audit feed.csv --checks duplicates,reuse -o report/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from multimodal_cat.cli.errors import UserError

NONE = "none"


def add_parser(subparsers: Any) -> None:
    """Add the ``index``, ``similar`` and ``audit`` sub-commands."""
    _add_index(subparsers)
    _add_similar(subparsers)
    _add_audit(subparsers)


def _feed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--column", action="append", default=[], metavar="FIELD=NAME",
        help="input column for a field: id, title, description, brand, seller_category, image",
    )
    p.add_argument("--image-root", help="folder for relative image paths (default: the feed's)")
    p.add_argument(
        "--category-column", metavar="COLUMN[,COLUMN...]",
        help="column(s) with the curated category; several are joined as a path",
    )


def _encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-encoder", default="minilm", help=f"text encoder, or {NONE}")
    p.add_argument("--image-encoder", default="dinov2-small", help=f"image encoder, or {NONE}")
    p.add_argument("--max-length", type=int, default=64, help="tokens kept per title")


def _add_index(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "index", help="build, grow or trim a catalog index",
        description="A catalog index holds each product's text, image and fused vectors, its "
        "id and category, and the encoders that made them.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="index a feed")
    build.add_argument("feed", metavar="FEED")
    build.add_argument("-o", "--output", required=True, metavar="INDEX", help="index folder")
    build.add_argument("--model", metavar="CKPT",
                       help="a trained checkpoint: its towers encode (instead of the encoders)")
    _feed_options(build)
    _encoder_options(build)
    build.set_defaults(func=run_index_build)
    add = actions.add_parser("add", help="add (or replace) a feed's products in an index")
    add.add_argument("index", metavar="INDEX")
    add.add_argument("feed", metavar="FEED")
    _feed_options(add)
    add.set_defaults(func=run_index_add)
    remove = actions.add_parser("remove", help="remove products by id")
    remove.add_argument("index", metavar="INDEX")
    remove.add_argument("ids", nargs="+", metavar="ID")
    remove.set_defaults(func=run_index_remove)


def _add_similar(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "similar", help="products like a photo, a title or a catalog product",
        description="The catalog's nearest products to a shopper's photo, a title, both, or a "
        "product already in the index.",
    )
    p.add_argument("index", metavar="INDEX")
    p.add_argument("--image", metavar="PHOTO", help="a photo file")
    p.add_argument("--title", help="a title or search text")
    p.add_argument("--id", dest="product_id", metavar="SKU", help="a product of the index")
    p.add_argument("-k", type=int, default=10, help="how many products (default 10)")
    p.add_argument("--within", metavar="BRANCH", help='only this branch: "Apparel > Shoes"')
    p.add_argument("-o", "--output", default="-", help="CSV file, or - for stdout (default)")
    p.set_defaults(func=run_similar)


def _add_audit(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit", help="find duplicates, wrong categories, swapped and reused photos, bad labels",
        description="Audit a catalog feed; writes findings.csv, findings.jsonl and report.html.",
    )
    p.add_argument("feed", metavar="FEED")
    p.add_argument(
        "--checks", default="all",
        help="comma-separated: duplicates,categories,images,reuse,labels (default: all)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="report folder")
    p.add_argument("--reference", metavar="INDEX", help="labelled index to vote categories from")
    p.add_argument("--model", metavar="CKPT", help="a trained model: predictions and by_input")
    _feed_options(p)
    _encoder_options(p)
    p.set_defaults(func=run_audit)


# ------------------------------------------------------------------ helpers
def _feed(path: str) -> Path:
    feed = Path(path)
    if not feed.is_file():
        raise UserError(f"feed file not found: {feed}")
    return feed


def _encoders(args: argparse.Namespace, checkpoint: str | None = None) -> Any:
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.errors import MultimodalCatError

    if checkpoint:
        try:
            return CatalogEncoders.from_checkpoint(checkpoint)
        except (MultimodalCatError, OSError, ValueError) as error:
            raise UserError(f"cannot load the model {checkpoint!r}: {error}") from None
    text = None if args.text_encoder == NONE else args.text_encoder
    image = None if args.image_encoder == NONE else args.image_encoder
    if text is None and image is None:
        raise UserError("expected a text encoder, an image encoder or both; both are 'none'")
    try:
        return CatalogEncoders.from_names(text, image, max_length=args.max_length)
    except (MultimodalCatError, OSError, ValueError) as error:
        raise UserError(f"cannot load the encoders: {error}") from None


def _load_index(path: str) -> Any:
    from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError

    try:
        return CatalogIndex.load(path)
    except CatalogIndexError as error:
        raise UserError(str(error)) from None


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _report_skipped(skipped: Any) -> None:
    for row in skipped.itertuples():
        _say(f"row {row.row} (id {row.id!r}) not indexed: {row.error}")


# ------------------------------------------------------------------ commands
def run_index_build(args: argparse.Namespace) -> int:
    """Build an index from a feed."""
    from multimodal_cat.catalog.build import build_index
    from multimodal_cat.errors import MultimodalCatError

    feed = _feed(args.feed)
    encoders = _encoders(args, checkpoint=args.model)
    try:
        result = build_index(
            feed, encoders, category=args.category_column, columns=args.column,
            image_root=args.image_root,
        )
    except MultimodalCatError as error:
        raise UserError(str(error)) from None
    result.index.save(args.output)
    _report_skipped(result.skipped)
    _say(f"indexed {len(result.index)} products ({len(result.skipped)} rows skipped) "
         f"into {args.output}")
    return 0


def run_index_add(args: argparse.Namespace) -> int:
    """Add a feed's products to an existing index, with the index's own encoders."""
    from multimodal_cat.catalog.build import build_index
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.errors import MultimodalCatError

    index = _load_index(args.index)
    feed = _feed(args.feed)
    try:
        encoders = CatalogEncoders.from_specs(index.specs)
        before = len(index)
        result = build_index(
            feed, encoders, category=args.category_column, columns=args.column,
            image_root=args.image_root, index=index,
        )
    except (MultimodalCatError, OSError) as error:
        raise UserError(str(error)) from None
    index.save(args.index)
    _report_skipped(result.skipped)
    _say(f"index {args.index}: {before} -> {len(index)} products")
    return 0


def run_index_remove(args: argparse.Namespace) -> int:
    """Remove products by id."""
    from multimodal_cat.catalog.index import CatalogIndexError

    index = _load_index(args.index)
    try:
        removed = index.remove(args.ids)
    except CatalogIndexError as error:
        raise UserError(str(error)) from None
    index.save(args.index)
    _say(f"removed {removed} products; {len(index)} left")
    return 0


def run_similar(args: argparse.Namespace) -> int:
    """Print (or write) the nearest products as CSV."""
    from multimodal_cat.catalog.similar import similar
    from multimodal_cat.errors import MultimodalCatError

    if not (args.image or args.title or args.product_id):
        raise UserError("expected a query: --image PHOTO, --title TEXT or --id SKU")
    if args.k < 1:
        raise UserError(f"-k must be at least 1; found {args.k}")
    if args.image and not Path(args.image).is_file():
        raise UserError(f"cannot read the query image {args.image!r}: no such file")
    index = _load_index(args.index)
    try:
        table = similar(
            index, image=args.image, title=args.title, id=args.product_id, k=args.k,
            within=args.within,
        )
    except (MultimodalCatError, OSError) as error:
        raise UserError(str(error)) from None
    if args.output == "-":
        table.to_csv(sys.stdout, index=False)
    else:
        table.to_csv(args.output, index=False)
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """Audit a feed and write the report folder."""
    from multimodal_cat.catalog.audits import audit
    from multimodal_cat.catalog.report import write_report
    from multimodal_cat.errors import MultimodalCatError

    feed = _feed(args.feed)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o must be a folder for the report; {out} is a file")
    from multimodal_cat.catalog.audits import parse_checks

    try:
        checks = parse_checks(args.checks)
    except MultimodalCatError as error:
        raise UserError(str(error)) from None
    reference = _load_index(args.reference) if args.reference else None
    encoders = _encoders(args)
    predictor = _predictor(args.model) if args.model else None
    kept: list[Any] = []
    try:
        findings = audit(
            feed, encoders, checks=checks, category=args.category_column, columns=args.column,
            image_root=args.image_root, reference=reference, predictor=predictor,
            products_out=kept.extend,
        )
    except MultimodalCatError as error:
        raise UserError(str(error)) from None
    paths = write_report(findings, out, products=kept)
    _say(f"{len(findings)} findings; report in {paths['html']}")
    return 0


def _predictor(model: str) -> Any:
    from multimodal_cat.errors import MultimodalCatError
    from multimodal_cat.predictors.checkpoint import ModelPredictor

    try:
        return ModelPredictor.from_pretrained(model)
    except (MultimodalCatError, OSError, ValueError) as error:
        raise UserError(f"cannot load the model {model!r}: {error}") from None
