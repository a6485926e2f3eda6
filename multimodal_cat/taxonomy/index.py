"""The flat index of a taxonomy tree, shared by the model head, the metrics and the aligner.

Position ``i`` is one category: ``ids[i]``, ``names[i]``, ``paths[i]`` and ``parents[i]`` (the
parent's position, ``-1`` for a root). Parents always come before their children, so one pass
over the positions derives depths, leaves, children and ancestor chains; the index computes each
once and keeps it. The module also holds the package's path separator, its one path normaliser
(:func:`path_key`) and :data:`IGNORE_INDEX`, the label of a row whose category is unknown.

Example:
    >>> index = TaxonomyIndex.from_paths(["A > B", "A > C", "D"])
    >>> index.paths
    ['A', 'A > B', 'A > C', 'D']
    >>> index.parents, index.depths, index.leaves
    ([-1, 0, 0, -1], [1, 2, 2, 1], [1, 2, 3])
    >>> index.children, index.ancestors(2)
    ([[1, 2], [], [], []], [0, 2])
    >>> index.node_index("a >  c"), index.position("D")
    (2, 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from multimodal_cat.errors import ConfigurationError, InputTypeError
from multimodal_cat.taxonomy.errors import UnknownCategoryError

PATH_SEPARATOR = " > "
IGNORE_INDEX = -100  # label of a row whose category (or tag) is unknown; losses and metrics skip it


def split_path(path: str | Iterable[str]) -> tuple[str, ...]:
    """Names of a ``"A > B > C"`` path (or of a list of names), inner spaces collapsed.

    Empty names are kept, so a caller can reject ``"A > > B"``.

    Example:
        >>> split_path(" Apparel >  Shoes ")
        ('Apparel', 'Shoes')
    """
    parts = path.split(">") if isinstance(path, str) else path
    return tuple(" ".join(str(part).split()) for part in parts)


def path_key(path: str | Iterable[str]) -> str:
    """Lookup key of a path: names case-folded, spaces collapsed, joined by ``" > "``.

    Example:
        >>> path_key("apparel >SHOES  Kids") == path_key(["Apparel", "Shoes Kids"])
        True
    """
    return PATH_SEPARATOR.join(part.casefold() for part in split_path(path))


def depths_of(parents: Sequence[int]) -> list[int]:
    """Depth of each position (roots are 1), from parent positions listed parents first."""
    depths: list[int] = []
    for parent in parents:
        depths.append(1 if parent < 0 else depths[parent] + 1)
    return depths


def leaves_of(parents: Sequence[int]) -> list[int]:
    """Positions without children, in position order."""
    has_child = {parent for parent in parents if parent >= 0}
    return [i for i in range(len(parents)) if i not in has_child]


def ancestor_paths(parents: Sequence[int]) -> list[tuple[int, ...]]:
    """For each position, the positions from its root down to itself."""
    paths: list[tuple[int, ...]] = []
    for node, parent in enumerate(parents):
        paths.append((node,) if parent < 0 else (*paths[parent], node))
    return paths


@dataclass(frozen=True)
class TaxonomyIndex:
    """A tree as parallel lists, parents before children: position ``i`` is category (class) ``i``.

    Built from a :class:`~multimodal_cat.taxonomy.Taxonomy` (:meth:`from_taxonomy`, or
    ``Taxonomy.to_index()``), from path strings (:meth:`from_paths`) or from the lists a model
    config stores.

    Attributes:
        ids: Category ids.
        parents: Position of each category's parent, ``-1`` for roots.
        names: Category names.
        paths: Full path strings (``"A > B > C"``).
        taxonomy_name: Name of the tree.

    Raises:
        ConfigurationError: When the lists differ in length, a parent comes after its child
            or an id repeats.
    """

    ids: list[str]
    parents: list[int]
    names: list[str]
    paths: list[str]
    taxonomy_name: str = "custom"

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.parents) == len(self.names) == len(self.paths) == n):
            raise ConfigurationError(
                f"ids, parents, names and paths must have one entry per node; got lengths "
                f"{n}, {len(self.parents)}, {len(self.names)}, {len(self.paths)}."
            )
        for i, parent in enumerate(self.parents):
            if not -1 <= parent < i:
                raise ConfigurationError(
                    f"Node {self.ids[i]!r} (index {i}) has parent index {parent}; expected -1 or an "
                    f"index below {i} (parents must come before children)."
                )
        if len(self._positions) != n:
            raise ConfigurationError("Category ids must be unique; the label space repeats an id.")

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_taxonomy(cls, taxonomy: Any) -> TaxonomyIndex:
        """The index of a ``Taxonomy`` (anything with ``to_index()``) or of another index."""
        if isinstance(taxonomy, cls):
            return taxonomy
        index = taxonomy.to_index() if hasattr(taxonomy, "to_index") else taxonomy
        if not isinstance(index, TaxonomyIndex):
            raise InputTypeError(
                f"Expected a Taxonomy, TaxonomyIndex or LabelSpace; got {type(taxonomy).__name__}."
            )
        if type(index) is cls:
            return index
        return cls(index.ids, index.parents, index.names, index.paths, index.taxonomy_name)

    @classmethod
    def from_paths(
        cls, paths: Iterable[str], ids: Iterable[str] | None = None, name: str = "custom"
    ) -> TaxonomyIndex:
        """Build a tree from ``"A > B > C"`` strings; missing ancestors are created.

        A repeated path counts once (its first id wins); empty names are dropped.

        Args:
            paths: Full paths; each may be a leaf or an inner node.
            ids: Optional ids for ``paths`` (same order); other nodes use their full path as id.
            name: Name of the tree.

        Raises:
            ConfigurationError: On a path without any name.
        """
        from multimodal_cat.taxonomy.tree import Taxonomy, categories_from_paths

        paths = list(paths)
        given: dict[tuple[str, ...], str] = {}
        for path, cid in zip(paths, paths if ids is None else ids, strict=True):
            parts = tuple(part for part in split_path(str(path)) if part)
            if not parts:
                raise ConfigurationError(f"Empty category path {path!r}; expected 'A > B > C'.")
            given.setdefault(parts, PATH_SEPARATOR.join(parts) if ids is None else str(cid))
        tree = Taxonomy(categories_from_paths(list(given), list(given.values())), name=name)
        return cls.from_taxonomy(tree)

    # ------------------------------------------------------------------ derived tables
    @cached_property
    def depths(self) -> list[int]:
        """Depth of each position, roots at 1."""
        return depths_of(self.parents)

    @cached_property
    def leaves(self) -> list[int]:
        """Positions without children, in position order."""
        return leaves_of(self.parents)

    @cached_property
    def children(self) -> list[list[int]]:
        """Child positions of each position, in position order."""
        out: list[list[int]] = [[] for _ in self.parents]
        for position, parent in enumerate(self.parents):
            if parent >= 0:
                out[parent].append(position)
        return out

    @cached_property
    def levels(self) -> list[list[int]]:
        """Positions grouped by depth, roots first (each group in position order)."""
        out: list[list[int]] = [[] for _ in range(max(self.depths, default=0))]
        for position, depth in enumerate(self.depths):
            out[depth - 1].append(position)
        return out

    @cached_property
    def ancestor_paths(self) -> list[tuple[int, ...]]:
        """For each position, the positions from its root down to itself."""
        return ancestor_paths(self.parents)

    def ancestors(self, position: int, include_self: bool = True) -> list[int]:
        """Positions from the root down to ``position`` (``position`` last when ``include_self``)."""
        chain = self.ancestor_paths[position]
        return list(chain if include_self else chain[:-1])

    # ------------------------------------------------------------------ lookups
    @cached_property
    def _positions(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.ids)}

    @cached_property
    def _lookup(self) -> dict[str, int]:
        lookup: dict[str, int] = {}
        for i, path in enumerate(self.paths):
            lookup.setdefault(path_key(path), i)
        lookup.update(self._positions)  # an id wins over a path spelled the same
        return lookup

    def position(self, category_id: str) -> int:
        """Position of ``category_id``; ``KeyError`` when absent."""
        try:
            return self._positions[category_id]
        except KeyError:
            raise UnknownCategoryError(f"category id {category_id!r} is not in this index") from None

    def node_index(self, category: str) -> int:
        """Position of a category given by id or by full path (case and spacing tolerant).

        Raises:
            KeyError: When neither an id nor a path matches.
        """
        key = str(category)
        found = self._lookup.get(key)
        if found is None:
            found = self._lookup.get(path_key(key))
        if found is None:
            raise UnknownCategoryError(
                f"Unknown category {category!r}: not an id nor a full path of taxonomy "
                f"{self.taxonomy_name!r} ({len(self.ids)} categories)."
            )
        return found
