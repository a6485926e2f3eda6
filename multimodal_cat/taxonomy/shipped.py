"""The taxonomy trees shipped with the library, and where their files are.

The ``taxonomies/`` data folder is installed inside the package (``multimodal_cat/taxonomies``)
by the wheel; in an editable install it is the repository's top-level ``taxonomies/``.

Example:
    >>> sorted(SHIPPED_TAXONOMIES)[:2]
    ['google/2021-09-21', 'shopify/2022-02']
"""

from __future__ import annotations

import functools
from pathlib import Path

import multimodal_cat
from multimodal_cat.errors import MissingFileError
from multimodal_cat.taxonomy.errors import UnknownTaxonomyError
from multimodal_cat.taxonomy.readers import read_taxonomy
from multimodal_cat.taxonomy.tree import Taxonomy

SHOPIFY_2025 = "shopify/2025-01-unstable"
# Shopify's folder of published rule files (mapping/shipped.py lists them).
INTEGRATIONS = f"{SHOPIFY_2025}/data/integrations"

# Shipped name -> (path inside taxonomies/, reader format).
# The legacy 2022-02 list has three categories whose parent has no entry: it is created.
SHIPPED_TAXONOMIES: dict[str, tuple[str, str]] = {
    "google/2021-09-21": ("google/2021-09-21/taxonomy-with-ids.en-US.txt", "google"),
    SHOPIFY_2025: (SHOPIFY_2025, "shopify_yaml"),
    "shopify/2022-02": (f"{INTEGRATIONS}/shopify/2022-02/full_names.yml", "full_names"),
}

# Short names -> full shipped names.
ALIASES: dict[str, str] = {
    "google": "google/2021-09-21",
    "shopify": SHOPIFY_2025,
    "shopify/2025-01": SHOPIFY_2025,
    "shopify/latest": SHOPIFY_2025,
}


def taxonomies_dir() -> Path:
    """The shipped data folder: inside the installed package, else the repository's ``taxonomies/``."""
    installed = Path(multimodal_cat.__file__).parent / "taxonomies"
    if installed.is_dir():
        return installed
    return Path(multimodal_cat.__file__).parent.parent / "taxonomies"


def shipped_names() -> list[str]:
    """Names accepted by :meth:`Taxonomy.load` besides paths (full names, then aliases)."""
    return [*SHIPPED_TAXONOMIES, *ALIASES]


def canonical_name(name: str) -> str:
    """The full shipped name for a name or alias (``"shopify"`` -> ``"shopify/2025-01-unstable"``)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SHIPPED_TAXONOMIES:
        raise unknown_taxonomy(name)
    return key


def unknown_taxonomy(name: object) -> UnknownTaxonomyError:
    """The error for a name that is neither shipped nor an existing path."""
    return UnknownTaxonomyError(
        f"unknown taxonomy {str(name)!r}: expected an existing file or folder, or one of the "
        f"shipped names {', '.join(shipped_names())}"
    )


def is_shipped_name(name: str) -> bool:
    """True when ``name`` is a shipped taxonomy name or alias."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key) in SHIPPED_TAXONOMIES


@functools.lru_cache(maxsize=8)
def load_shipped(name: str) -> Taxonomy:
    """Load (once per process) a shipped taxonomy by its full name."""
    relative, fmt = SHIPPED_TAXONOMIES[name]
    path = taxonomies_dir() / relative
    if not path.exists():
        raise MissingFileError(
            f"the shipped taxonomy {name!r} is missing its data at {path}: reinstall multimodal-cat"
        )
    return read_taxonomy(path, format=fmt, name=name, missing_parents="create")


def load_taxonomy(
    name_or_path: str | Path,
    format: str | None = None,
    missing_parents: str = "error",
) -> Taxonomy:
    """Load a shipped taxonomy by name, or read a path (see :meth:`Taxonomy.load`)."""
    if isinstance(name_or_path, str) and is_shipped_name(name_or_path):
        name = canonical_name(name_or_path)
        if format is None or format == SHIPPED_TAXONOMIES[name][1]:
            return load_shipped(name)
        return read_taxonomy(
            taxonomies_dir() / SHIPPED_TAXONOMIES[name][0],
            format=format,
            name=name,
            missing_parents="create",
        )
    path = Path(name_or_path)
    if path.exists():
        return read_taxonomy(path, format=format, missing_parents=missing_parents)
    raise unknown_taxonomy(name_or_path)
