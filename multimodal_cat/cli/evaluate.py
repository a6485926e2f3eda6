"""``multimodal-cat evaluate``: score a checkpoint or the zero-shot engine on a labelled feed.

It runs :meth:`multimodal_cat.Categorizer.evaluate` (the same input rule as the Python API) and
writes, into the output folder, ``metrics.json`` (per-level accuracy, macro-F1, hierarchical
F1, ECE, the auto-accept share at 95/98/99% precision, the rows scored and the labels left out),
``per_category.csv`` (support, precision, recall, F1 per category) and, with the ``plots``
extra, ``reliability.png`` and ``most_confused.png``.

Example:
    $ multimodal-cat evaluate test.csv --label-column masterCategory,subCategory,articleType \\
        --model ckpt --image-root ../shared/data/fashion -o eval/
"""

from __future__ import annotations

import argparse
import csv
import json
import warnings
from pathlib import Path
from typing import Any

from multimodal_cat._progress import info
from multimodal_cat.cli.checks import check_file, check_folder, check_model, check_taxonomy
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.output import warn
from multimodal_cat.cli.types import add_column_argument, probability

PER_CATEGORY_COLUMNS = ("path", "support", "predicted", "correct", "precision", "recall", "f1")


def add_parser(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a model or the zero-shot engine on a labelled feed",
        description="Predict every row of a labelled feed and write metrics, a per-category "
        "table and plots into a folder.",
    )
    p.add_argument("feed", metavar="FEED", help="labelled feed: CSV, TSV, JSON lines or Parquet")
    p.add_argument(
        "--label-column",
        required=True,
        metavar="COLUMN[,COLUMN...]",
        help="column with the true category (id or full path); several comma-separated columns "
        "are joined as a path",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the results")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="trained model folder or hub id")
    which.add_argument("--taxonomy", help="zero-shot into this taxonomy (default: shopify)")
    add_column_argument(p)
    p.add_argument(
        "--image-root", help="folder for relative image paths (default: the feed's folder)"
    )
    p.add_argument(
        "--min-confidence", type=probability, metavar="P", help="back off to a surer, coarser category"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the results; returns the exit code."""
    feed, out = Path(args.feed), Path(args.output)
    _check_paths(args, out)
    from multimodal_cat.categorizer import Categorizer, CategorizerError
    from multimodal_cat.errors import MultimodalCatError

    try:
        if args.model:
            categorizer = Categorizer.from_pretrained(args.model)
        else:
            categorizer = Categorizer.zero_shot(args.taxonomy or "shopify")
    except (MultimodalCatError, OSError, ValueError) as error:
        raise UserError(f"cannot build the predictor: {error}") from None
    out.mkdir(parents=True, exist_ok=True)
    plots = out if _has_matplotlib() else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = categorizer.evaluate(
                feed, args.label_column, columns=args.column, image_root=args.image_root,
                plots_dir=plots, min_confidence=args.min_confidence,
            )
    except (CategorizerError, MultimodalCatError) as error:
        raise UserError(str(error)) from None
    for warning in caught:
        warn(str(warning.message))
    _write(report, out, scored=sum(r["support"] for r in report.per_category))
    metrics = report.metrics
    info(
        f"leaf accuracy {metrics['leaf_accuracy']:.4f}, macro-F1 {metrics['leaf_macro_f1']:.4f}, "
        f"hierarchical F1 {metrics['hierarchical_f1']:.4f}, ECE {metrics['ece']:.4f}; "
        f"results in {out}{'' if plots else ' (no plots: pip install multimodal-cat[plots])'}"
    )
    return 0


def _check_paths(args: argparse.Namespace, out: Path) -> None:
    """Mistakes answered at once, before torch and transformers are imported."""
    check_file(args.feed, "feed file")
    check_model(args.model, "--model")
    check_taxonomy(args.taxonomy, "--taxonomy")
    check_folder(args.image_root, "--image-root folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"-o must be a folder for the results; {out} is a file")


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _write(report: Any, out: Path, *, scored: int) -> None:
    summary = {
        "metrics": report.metrics,
        "auto_accept": {str(k): v for k, v in report.auto_accept.items()},
        "rows_scored": scored,
        "unknown_labels": report.unknown_labels,
        "most_confused": [list(c) for c in report.confused],
        "plots": [p.name for p in report.plots],
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with (out / "per_category.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PER_CATEGORY_COLUMNS)
        writer.writeheader()
        writer.writerows(report.per_category)
