"""Mappings shipped with the library, found by tree names and chained when needed.

Example:
    >>> load_mapping("shopify", "google").target_name
    'google/2021-09-21'
"""

from __future__ import annotations

import functools
from pathlib import Path

from multimodal_cat.mapping.mapping import Mapping
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.taxonomy.errors import UnknownTaxonomyError
from multimodal_cat.taxonomy.shipped import (
    INTEGRATIONS,
    SHOPIFY_2025,
    canonical_name,
    is_shipped_name,
    load_shipped,
    taxonomies_dir,
)

# (source, target) -> rule file inside taxonomies/.
SHIPPED_MAPPINGS: dict[tuple[str, str], str] = {
    (
        SHOPIFY_2025,
        "google/2021-09-21",
    ): f"{INTEGRATIONS}/google/2021-09-21/mappings/from_shopify.yml",
    ("shopify/2022-02", SHOPIFY_2025): f"{INTEGRATIONS}/shopify/2022-02/mappings/to_shopify.yml",
}


@functools.lru_cache(maxsize=4)
def _load_edge(source: str, target: str) -> Mapping:
    path = taxonomies_dir() / SHIPPED_MAPPINGS[(source, target)]
    return Mapping.from_file(path, source=load_shipped(source), target=load_shipped(target))


def _route(source: str, target: str) -> list[tuple[str, str, bool]]:
    """Shortest chain of shipped mappings (each step: from, to, inverted?) from source to target."""
    steps: dict[str, list[tuple[str, str, bool]]] = {source: []}
    frontier = [source]
    while frontier and target not in steps:
        nxt = []
        for node in frontier:
            for a, b in SHIPPED_MAPPINGS:
                for start, end, inverted in ((a, b, False), (b, a, True)):
                    if start == node and end not in steps:
                        steps[end] = [*steps[node], (start, end, inverted)]
                        nxt.append(end)
        frontier = nxt
    if target not in steps:
        pairs = ", ".join(f"{a} -> {b}" for a, b in SHIPPED_MAPPINGS)
        raise UnknownTaxonomyError(
            f"no shipped mapping from {source!r} to {target!r}: shipped ones are {pairs}"
        )
    return steps[target]


@functools.lru_cache(maxsize=8)
def load_mapping(source: str, target: str) -> Mapping:
    """The shipped mapping from ``source`` to ``target`` (names or aliases), cached per process.

    Chains published rule files (composing, and inverting where a step runs backwards): for
    example ``shopify/2022-02`` -> ``google`` is 2022-02 -> 2025-01 composed with 2025-01 -> Google.
    Treat the returned object as read-only: it is shared between callers.
    """
    source, target = canonical_name(source), canonical_name(target)
    if source == target:
        raise UnknownTaxonomyError(f"expected two different taxonomies, found {source!r} twice")
    mapping: Mapping | None = None
    for start, end, inverted in _route(source, target):
        step = _load_edge(end, start).invert() if inverted else _load_edge(start, end)
        mapping = step if mapping is None else mapping.compose(step)
    assert mapping is not None  # _route returns at least one step for different names
    return mapping


def load_mapping_file(
    path: str | Path, source: Taxonomy | None = None, target: Taxonomy | None = None
) -> Mapping:
    """A mapping file (``taxonomy align``'s or ``Mapping.to_yaml``'s YAML, Shopify's YAML or
    text form) with its trees: those given, else the shipped trees the file names.

    With its trees, the mapping checks its ids, falls back to ancestors' rules and gives the
    target paths; a tree the file names that is not shipped stays unknown (ids only).

    Raises:
        MappingFormatError: The file cannot be read, or names ids its trees do not have.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "mine.yml"
        >>> _ = load_mapping("shopify", "google").to_yaml(path)
        >>> load_mapping_file(path).map("aa-1-1-1").target_paths  # trees named in the file
        ('Apparel & Accessories > Clothing > Activewear',)
    """
    mapping = Mapping.from_file(path, source, target)
    source = source or mapping.source or _shipped_tree(mapping.source_name)
    target = target or mapping.target or _shipped_tree(mapping.target_name)
    if source is mapping.source and target is mapping.target:
        return mapping
    with_trees = Mapping(
        mapping.rules.values(),
        source,
        target,
        mapping.source_name,
        mapping.target_name,
        unmapped_ids=mapping.unmapped_ids,
    )
    with_trees._int_ids = mapping._int_ids
    return with_trees


def _shipped_tree(name: str | None) -> Taxonomy | None:
    return load_shipped(canonical_name(name)) if name and is_shipped_name(name) else None
