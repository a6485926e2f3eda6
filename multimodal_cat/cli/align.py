"""``multimodal-cat taxonomy align``: infer a mapping between two taxonomy trees.

Example:
    $ multimodal-cat taxonomy align shopify google -o mapping.yml
    $ multimodal-cat taxonomy align shopify google -o mapping.yml \\
        --published old_rules.yml --learn-from old_rules.yml --learn-source old_tree.txt
"""

from __future__ import annotations

import argparse
import warnings
from collections import Counter
from pathlib import Path

from multimodal_cat._progress import info
from multimodal_cat.cli.checks import check_file, check_taxonomy
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.output import is_stdout, output_path, shown, warn
from multimodal_cat.mapping import Mapping
from multimodal_cat.taxonomy import Taxonomy, TaxonomyFormatError, UnknownTaxonomyError

FORCED = {"auto": None, "same-language": False, "cross-language": True}  # family_structure

EPILOG = """examples:
  multimodal-cat taxonomy align shopify google -o mapping.yml
  multimodal-cat taxonomy align my_tree.csv google -o mine_to_google.yml --encoder minilm
  multimodal-cat taxonomy align shopify google -o mapping.yml \\
      --published 2024-07/from_shopify.yml \\
      --learn-from 2024-07/from_shopify.yml --learn-source 2024-07/categories.txt

Writes the rules in Shopify's YAML rule format (published rules kept, the others inferred, each
with `confidence` and `provenance` keys beside input/output) and a CSV review file (column
`reason`), ranked so that likely wrong rules come first: rules whose category and descendants
point to another target branch (confidence lowered), then the least confident inferred rules
(--review-fraction, --review-below), then confident ones whose siblings disagree or that leave
their parent's target branch.
Multilingual trees: --encoder multilingual-e5-small (pip install 'multimodal-cat[multilingual]')."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``align`` to the ``taxonomy`` sub-commands."""
    parser = subparsers.add_parser(
        "align",
        help="infer a mapping between two trees (YAML rules + CSV review file)",
        description="Infer a mapping from SOURCE to TARGET, with a confidence on each rule.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", help="source tree: shipped name (shopify, google, ...) or file/folder"
    )
    parser.add_argument("target", help="target tree: shipped name or file/folder")
    parser.add_argument(
        "-o", "--output", required=True, help="mapping file to write (.yml); - for stdout"
    )
    parser.add_argument(
        "--review", help="review CSV (default: OUTPUT with .review.csv; none with -o -)"
    )
    parser.add_argument(
        "--review-fraction",
        type=float,
        default=0.1,
        help="share of inferred rules listed as least confident (default 0.1)",
    )
    parser.add_argument(
        "--review-below",
        type=float,
        help="also list every inferred rule whose confidence is below this",
    )
    parser.add_argument(
        "--published", help="rule file whose rules are kept; only missing ones are inferred"
    )
    parser.add_argument(
        "--learn-from", help="rule file of known rules to learn from (e.g. an older release)"
    )
    parser.add_argument(
        "--learn-source", help="source tree of --learn-from's rules (default: SOURCE)"
    )
    parser.add_argument(
        "--encoder",
        default="minilm",
        help="text encoder: minilm (default, English), multilingual-e5-small, hub id or folder; "
        "'none' for lexical only",
    )
    parser.add_argument(
        "--multilingual",
        default="multilingual-e5-small",
        help="encoder used instead of an English-only --encoder when a tree is in another "
        "language, if installed (default multilingual-e5-small; 'none': only warn)",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "same-language", "cross-language"),
        default="auto",
        help="auto (default): by the trees' languages; same-language: names and shared words; "
        "cross-language: families matched as a whole by names and shape",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the embedding cache"
    )
    parser.set_defaults(func=run)


def _tree(name: str) -> Taxonomy:
    try:
        return Taxonomy.load(name)
    except (UnknownTaxonomyError, TaxonomyFormatError, FileNotFoundError, OSError) as error:
        raise UserError(str(error)) from None


def _rules(path: str, source: Taxonomy, target: Taxonomy, what: str) -> Mapping:
    """Read a rule file, keeping the rules whose ids both trees have (a note says how many not)."""
    try:
        raw = Mapping.from_file(path)
    except (TaxonomyFormatError, FileNotFoundError, OSError, ValueError) as error:
        raise UserError(f"cannot read {what} rules from {path}: {error}") from None
    rules = [
        r
        for sid, r in raw.rules.items()
        if sid in source and all(t in target for t in r.target_ids)
    ]
    dropped = len(raw.rules) - len(rules)
    if dropped:
        info(f"note: {dropped} {what} rules name ids absent from the trees; ignored")
    if not rules:
        raise UserError(
            f"expected {what} rules between {source.name!r} and {target.name!r} in {path}; none applies"
        )
    return Mapping(rules, source, target)


def run(args: argparse.Namespace) -> int:
    """Align the trees and write the mapping and its review file."""
    for tree, what in (
        (args.source, "SOURCE"),
        (args.target, "TARGET"),
        (args.learn_source, "--learn-source"),
    ):
        check_taxonomy(tree, what)
    check_file(args.published, "--published rules file")
    check_file(args.learn_from, "--learn-from rules file")
    from multimodal_cat.align import MappingAligner
    from multimodal_cat.align.mode import LanguageWarning

    if not 0.0 <= args.review_fraction <= 1.0:
        raise UserError(f"expected --review-fraction between 0 and 1; got {args.review_fraction}")
    if args.review_below is not None and not 0.0 <= args.review_below <= 1.0:
        raise UserError(f"expected --review-below between 0 and 1; got {args.review_below}")
    source, target = _tree(args.source), _tree(args.target)
    encoder = None if args.encoder.lower() == "none" else args.encoder
    aligner = MappingAligner(
        encoder,
        cache=False if args.no_cache else None,
        review_fraction=args.review_fraction,
        review_below=args.review_below,
        family_structure=FORCED[args.mode],
        multilingual=None if args.multilingual.lower() == "none" else args.multilingual,
    )
    if args.learn_from:
        known_source = _tree(args.learn_source) if args.learn_source else source
        aligner.fit(_rules(args.learn_from, known_source, target, "known"))
    published = _rules(args.published, source, target, "published") if args.published else None
    try:
        with warnings.catch_warnings():  # said once below, as a plain line
            warnings.simplefilter("ignore", LanguageWarning)
            result = aligner.align(source, target, published=published)
    except OSError as error:
        raise UserError(f"cannot load text encoder {args.encoder!r}: {error}") from None
    details = result.details
    info(f"mode: {details['mode']} ({details['mode_reason']}); encoder: {details['encoder']}")
    for message in details["warnings"]:  # shown even with --quiet
        warn(message)
    review = _review_path(args)
    try:
        for path in (Path(args.output), review):
            if path is not None and not is_stdout(path):
                path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the output folder: {error}") from None
    with output_path(args.output, ".yml") as output:
        result.mapping.to_yaml(output)
    if review is not None:
        result.write_review_csv(review)
    inferred = sum(r.provenance == "inferred" for r in result.mapping.rules.values())
    reasons = Counter(item.reason for item in result.review)
    said = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
    info(
        f"{len(result.mapping.rules)} rules ({len(result.mapping.rules) - inferred} published, "
        f"{inferred} inferred) -> {shown(args.output)}; {len(result.review)} to review"
        f"{f' ({said})' if said else ''} -> {review or 'not written (give --review)'}"
    )
    return 0


def _review_path(args: argparse.Namespace) -> Path | None:
    """The review CSV: --review, else beside the output (none when the output is stdout)."""
    if args.review:
        return Path(args.review)
    return None if is_stdout(args.output) else Path(args.output).with_suffix(".review.csv")
