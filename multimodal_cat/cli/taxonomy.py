"""``multimodal-cat taxonomy``: look up, search, map and count taxonomy categories.

Example:
    $ multimodal-cat taxonomy show aa-1-1
    $ multimodal-cat taxonomy map aa-1-1 --from shopify --to google
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
from collections import Counter
from pathlib import Path

from multimodal_cat.cli.checks import check_file
from multimodal_cat.cli.errors import UserError
from multimodal_cat.errors import FormatError
from multimodal_cat.mapping import Mapping
from multimodal_cat.mapping.rule import MappedCategory
from multimodal_cat.mapping.shipped import load_mapping_file
from multimodal_cat.taxonomy import Taxonomy, TaxonomyFormatError, UnknownTaxonomyError
from multimodal_cat.taxonomy.shipped import shipped_names

_RAW = argparse.RawDescriptionHelpFormatter
_TAX_HELP = (
    "taxonomy name (google, shopify, shopify/2022-02, ...) or file/folder path (default: shopify)"
)
EPILOG = """examples:
  multimodal-cat taxonomy show aa-1-1
  multimodal-cat taxonomy show 5322 --taxonomy google
  multimodal-cat taxonomy search running shoes
  multimodal-cat taxonomy map aa-1-1 aa-1-2 --from shopify --to google
  multimodal-cat taxonomy map --file ids.txt --from shopify/2022-02 --to google --format csv
  multimodal-cat taxonomy map aa-1-1 --mapping mapping.yml   # a mapping from `taxonomy align`
  cat ids.txt | multimodal-cat taxonomy map - --from shopify --to google --format jsonl
  multimodal-cat taxonomy stats --taxonomy google

shipped taxonomies: """


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``taxonomy`` and its sub-commands to the top-level parser."""
    parser = subparsers.add_parser(
        "taxonomy",
        help="look up, search, map and count taxonomy categories",
        description="Look up, search, map and count categories of taxonomy trees.",
        epilog=EPILOG + ", ".join(shipped_names()),
        formatter_class=_RAW,
    )
    parser.set_defaults(func=lambda args: _missing_command(parser))
    sub = parser.add_subparsers(dest="taxonomy_command", metavar="SUBCOMMAND")

    show = sub.add_parser(
        "show",
        help="show one category",
        formatter_class=_RAW,
        description="Show a category: id, path, parent, children and attributes.",
        epilog="examples:\n  multimodal-cat taxonomy show aa-1-1\n"
        "  multimodal-cat taxonomy show 'Apparel & Accessories > Clothing'\n",
    )
    show.add_argument(
        "id",
        metavar="ID",
        help="category id (aa-1-1, gid://shopify/TaxonomyCategory/aa-1-1) or full path",
    )
    show.add_argument("--taxonomy", "-t", default="shopify", help=_TAX_HELP)
    show.set_defaults(func=run_show)

    search = sub.add_parser(
        "search",
        help="find categories by words",
        formatter_class=_RAW,
        description="Find categories whose path contains the words, best first.",
        epilog="example:\n  multimodal-cat taxonomy search running shoes --limit 5\n",
    )
    search.add_argument("words", nargs="+", metavar="WORD")
    search.add_argument("--taxonomy", "-t", default="shopify", help=_TAX_HELP)
    search.add_argument("--limit", type=int, default=20, help="most results to print (default: 20)")
    search.set_defaults(func=run_search)

    mapping = sub.add_parser(
        "map",
        help="map category ids to another taxonomy",
        formatter_class=_RAW,
        description="Map category ids with the shipped published mappings, composing "
        "them when needed. Exit code 1 when some ids are unknown or unmapped.",
        epilog="examples:\n  multimodal-cat taxonomy map aa-1-1 --from shopify --to google\n"
        "  multimodal-cat taxonomy map 1 2 3 --from shopify/2022-02 --to google --format jsonl\n"
        "  multimodal-cat taxonomy map - --from shopify --to google < ids.txt\n",
    )
    mapping.add_argument(
        "ids", nargs="*", metavar="ID", help="source ids; '-' reads ids from stdin, one per line"
    )
    mapping.add_argument(
        "--file", "-f", type=Path, help="read source ids from this file, one per line"
    )
    mapping.add_argument(
        "--from", dest="source", help="source taxonomy (default: shopify, or --mapping's own)"
    )
    mapping.add_argument(
        "--to", dest="target", help="target taxonomy (default: google, or --mapping's own)"
    )
    mapping.add_argument(
        "--mapping",
        "-m",
        type=Path,
        help="map with this mapping file instead of the shipped ones: `taxonomy align`'s "
        "output (reviewed or not) or Shopify's rules (YAML or text form)",
    )
    mapping.add_argument(
        "--format",
        choices=("text", "csv", "jsonl"),
        default="text",
        help="output format (default: text)",
    )
    mapping.set_defaults(func=run_map)

    stats = sub.add_parser(
        "stats",
        help="count categories, depths and leaves",
        description="Print counts, depth range, leaves and categories per depth.",
    )
    stats.add_argument("--taxonomy", "-t", default="shopify", help=_TAX_HELP)
    stats.set_defaults(func=run_stats)

    try:
        align = importlib.import_module("multimodal_cat.cli.align")
    except ModuleNotFoundError as error:
        if error.name != "multimodal_cat.cli.align":
            raise
    else:
        align.add_parser(sub)


def _missing_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _load(name: str) -> Taxonomy:
    try:
        return Taxonomy.load(name)
    except (UnknownTaxonomyError, TaxonomyFormatError, FileNotFoundError, OSError) as error:
        raise UserError(str(error)) from None


def run_show(args: argparse.Namespace) -> int:
    """Print one category."""
    tax = _load(args.taxonomy)
    try:
        category = tax.resolve(args.id)
    except KeyError as error:
        raise UserError(f"{error.args[0]} (try: multimodal-cat taxonomy search WORDS)") from None
    parent = tax.parent(category.id)
    print(f"id:         {category.id}")
    print(f"name:       {category.name}")
    print(f"path:       {category.full_path}")
    print(f"depth:      {category.depth}")
    print(f"parent:     {f'{parent.id}  {parent.name}' if parent else '-'}")
    children = tax.children(category.id)
    print(f"children:   {len(children)}")
    for child in children:
        print(f"  {child.id}  {child.name}")
    if category.attributes:
        print(f"attributes: {', '.join(category.attributes)}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    """Print the best matches, one per line; exit 1 when nothing matches."""
    tax = _load(args.taxonomy)
    found = tax.search(" ".join(args.words), limit=args.limit)
    for category in found:
        print(f"{category.id}\t{category.full_path}")
    if not found:
        print(f"no category of {tax.name} matches {' '.join(args.words)!r}", file=sys.stderr)
    return 0 if found else 1


def _read_ids(args: argparse.Namespace) -> list[str]:
    ids = [i for i in args.ids if i != "-"]
    if "-" in args.ids:
        ids += [line.strip() for line in sys.stdin if line.strip()]
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except OSError as error:
            raise UserError(f"cannot read ids from {args.file}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise UserError(
                f"cannot read ids from {args.file}: expected UTF-8 text, found byte "
                f"0x{error.object[error.start]:02x} at offset {error.start:,}"
            ) from None
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise UserError(
            "expected category ids: give them as arguments, with --file F, or '-' for stdin"
        )
    return ids


def run_map(args: argparse.Namespace) -> int:
    """Map ids and print one result per id; exit 1 when some are unknown or unmapped."""
    ids = _read_ids(args)
    try:
        mapping = _mapping(args)
    except (UnknownTaxonomyError, FormatError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    writer = csv.writer(sys.stdout) if args.format == "csv" else None
    if writer:
        writer.writerow(["source_id", "target_ids", "target_paths", "provenance", "confidence"])
    failures = 0
    for source_id in ids:
        try:
            result: MappedCategory | None = mapping.map(source_id)
        except KeyError:
            result = None
        failures += result is None or result.provenance == "unmapped"
        _print_result(args.format, writer, source_id, result, mapping)
    if failures:
        print(f"{failures} of {len(ids)} ids could not be mapped", file=sys.stderr)
    return 1 if failures else 0


def _mapping(args: argparse.Namespace) -> Mapping:
    """``--mapping``'s file (against --from / --to when given), else the shipped mapping."""
    if args.mapping is None:
        return Mapping.load(args.source or "shopify", args.target or "google")
    check_file(args.mapping, "--mapping file")
    source = _load(args.source) if args.source else None
    target = _load(args.target) if args.target else None
    return load_mapping_file(args.mapping, source, target)


def _print_result(
    fmt: str, writer, source_id: str, result: MappedCategory | None, mapping: Mapping
) -> None:
    status = "not found" if result is None else result.provenance
    targets = result.target_ids if result else ()
    paths = result.target_paths if result else ()
    confidence = result.confidence if result else 0.0
    if fmt == "jsonl":
        record = {
            "source_id": source_id,
            "source_taxonomy": mapping.source_name,
            "taxonomy": mapping.target_name,
            "target_ids": list(targets),
            "target_paths": list(paths),
            "provenance": status,
            "confidence": confidence,
        }
        print(json.dumps(record, ensure_ascii=False))
    elif writer is not None:
        writer.writerow([source_id, "|".join(targets), "|".join(paths), status, confidence])
    elif result is None:
        print(f"{source_id}\tnot found in {mapping.source_name}")
    elif not targets:
        print(f"{source_id}\tunmapped")
    else:
        for target, path in zip(targets, paths or targets, strict=False):
            print(f"{source_id}\t{target}\t{path}\t({status})")


def run_stats(args: argparse.Namespace) -> int:
    """Print counts for a tree."""
    tax = _load(args.taxonomy)
    depths = Counter(c.depth for c in tax)
    print(f"taxonomy:    {tax.name}")
    print(f"categories:  {len(tax)}")
    print(f"roots:       {len(tax.roots())}")
    print(f"leaves:      {len(tax.leaves())}")
    print(f"depth:       {min(depths, default=0)}-{max(depths, default=0)}")
    for depth in sorted(depths):
        print(f"  depth {depth}: {depths[depth]}")
    with_attributes = sum(1 for c in tax if c.attributes)
    if with_attributes:
        print(f"categories with attributes: {with_attributes}")
    return 0
