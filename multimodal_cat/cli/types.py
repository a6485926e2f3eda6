"""Argument types and arguments shared by the sub-commands (argparse reports a bad value as
exit 2)."""

from __future__ import annotations

import argparse


def probability(text: str) -> float:
    """An argparse type: a number in [0, 1].

    Example:
        >>> probability("0.9")
        0.9
    """
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], found {text!r}")
    return value


def add_column_argument(p: argparse.ArgumentParser) -> None:
    """``--column FIELD=NAME`` (repeatable), read by :class:`~multimodal_cat.feeds.columns.ColumnMap`."""
    p.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=NAME",
        help="input column for a field: id, title, description, brand, seller_category, image",
    )
