"""Checks of the command line's paths and names, run before any heavy import.

Each command checks its files, folders, trees and model names here first, so a wrong path
is answered at once (exit 2) instead of after torch and transformers have loaded. Nothing
here imports torch, transformers or an encoder.

Example:
    >>> check_taxonomy("shopify", "--taxonomy")
    >>> check_file("no-such-feed.csv", "feed file")
    Traceback (most recent call last):
    ...
    multimodal_cat.cli.errors.UserError: feed file not found: no-such-feed.csv (expected an existing file)
"""

from __future__ import annotations

from pathlib import Path

from multimodal_cat.cli.errors import UserError
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.mapping.rules_io import is_mapping_file, rule_file_names
from multimodal_cat.predictors.locate import check_checkpoint_name
from multimodal_cat.taxonomy.shipped import is_shipped_name, unknown_taxonomy


def check_file(path: str | Path | None, what: str) -> None:
    """Refuse a path that is not an existing file (``None`` and ``-``, stdin, pass)."""
    if path is None or str(path) == "-":
        return
    found = Path(path).expanduser()
    if found.is_dir():
        raise UserError(f"{what} is a folder: {path} (expected a file)")
    if not found.exists():
        raise UserError(f"{what} not found: {path} (expected an existing file)")


def check_folder(path: str | Path | None, what: str) -> None:
    """Refuse a path that is not an existing folder (``None`` passes)."""
    if path is None:
        return
    found = Path(path).expanduser()
    if found.exists() and not found.is_dir():
        raise UserError(f"{what} is a file: {path} (expected a folder)")
    if not found.exists():
        raise UserError(f"{what} not found: {path} (expected an existing folder)")


def check_model(name: str | None, what: str) -> None:
    """Refuse a model that can only be missing: not a folder here, nor a hub id (``None`` passes)."""
    if name is None:
        return
    try:
        check_checkpoint_name(name)
    except (MultimodalCatError, OSError) as error:
        raise UserError(f"{what}: {error}") from None


def check_taxonomy(name: str | None, what: str) -> None:
    """Refuse a tree that is neither shipped nor an existing file or folder (``None`` passes)."""
    if name is None or is_shipped_name(name) or Path(name).expanduser().exists():
        return
    raise UserError(f"{what}: {unknown_taxonomy(name)}")


def check_map_targets(names: list[str], what: str) -> None:
    """``--map-to`` values: trees (shipped or paths) or mapping files (a value that is neither
    is checked as a tree, so the message lists the shipped names), at most one per target tree
    (two would fill the same output columns)."""
    trees = []
    for name in names:
        if is_mapping_file(name):
            trees.append(rule_file_names(name)[1] or "target")
        else:
            check_taxonomy(name, what)
            trees.append(name)
    short = [tree.strip().lower().split("/")[0] for tree in trees]
    twice = sorted({tree for tree in short if short.count(tree) > 1})
    if twice:
        raise UserError(
            f"{what}: expected one mapping per target tree, found two into {', '.join(twice)} "
            "(they would share the output's columns); run once per mapping"
        )
