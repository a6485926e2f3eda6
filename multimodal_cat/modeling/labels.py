"""The label space a model predicts into: taxonomy nodes and attribute tag groups.

A :class:`LabelSpace` is a flat, index-based view of a taxonomy tree (node ids, parent indices,
names, full paths) that the model stores in its config, so a saved checkpoint can name its
predictions without the taxonomy file. :class:`TagGroup` describes one attribute (``color``,
``material``) whose values the tag head scores, single-valued (softmax) or multi-valued (sigmoid).

Example:
    >>> space = LabelSpace.from_paths(["Apparel > Shoes > Sneakers", "Apparel > Shirts"])
    >>> space.paths
    ['Apparel', 'Apparel > Shoes', 'Apparel > Shoes > Sneakers', 'Apparel > Shirts']
    >>> space.node_index("apparel > shoes")
    1
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PATH_SEPARATOR = " > "


def normalize_path(path: str) -> str:
    """Case- and spacing-insensitive form of a ``A > B > C`` path, for lookups."""
    parts = [re.sub(r"\s+", " ", part).strip().casefold() for part in str(path).split(">")]
    return PATH_SEPARATOR.join(parts)


@dataclass(frozen=True)
class TagGroup:
    """One attribute scored by the tag head.

    Attributes:
        attribute: Attribute name, e.g. ``color``.
        values: Its value names, in head order.
        multi_valued: ``True`` for a sigmoid per value (several may hold, e.g. materials),
            ``False`` for a softmax over the values (exactly one holds, e.g. a base colour).
    """

    attribute: str
    values: tuple[str, ...]
    multi_valued: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, as stored in the model config."""
        return {
            "attribute": self.attribute,
            "values": list(self.values),
            "multi_valued": self.multi_valued,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TagGroup:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["attribute"]), tuple(data["values"]), bool(data.get("multi_valued", False))
        )


def build_tag_groups(
    tags: Mapping[str, Sequence[str]] | Sequence[TagGroup | Mapping[str, Any]] | None,
    multi_valued: Iterable[str] = (),
) -> list[TagGroup]:
    """Normalise the ways users name tag groups into a list of :class:`TagGroup`.

    Args:
        tags: ``{attribute: [values]}``, or a list of :class:`TagGroup` / their dicts, or ``None``.
        multi_valued: Attributes (of a ``{attribute: [values]}`` mapping) that are multi-valued.

    Returns:
        The groups, in the given order.

    Raises:
        ValueError: When a group has no values or repeats a value.
    """
    if not tags:
        return []
    multi = set(multi_valued)
    if isinstance(tags, Mapping):
        groups = [TagGroup(str(a), tuple(str(v) for v in vs), a in multi) for a, vs in tags.items()]
    else:
        groups = [g if isinstance(g, TagGroup) else TagGroup.from_dict(g) for g in tags]
    for group in groups:
        if not group.values:
            raise ValueError(f"Tag group {group.attribute!r} has no values; expected at least one.")
        if len(set(group.values)) != len(group.values):
            raise ValueError(
                f"Tag group {group.attribute!r} repeats a value: {list(group.values)}."
            )
    return groups


@dataclass
class LabelSpace:
    """Index-based taxonomy tree: node ``i`` has id ``ids[i]`` and parent ``parents[i]`` (-1 = root).

    Parents always come before their children. Built from a ``multimodal_cat.taxonomy.Taxonomy``
    (:meth:`from_taxonomy`), from path strings (:meth:`from_paths`) or from a model config.
    """

    ids: list[str]
    parents: list[int]
    names: list[str]
    paths: list[str]
    taxonomy_name: str = "custom"
    _lookup: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not n:
            raise ValueError("A label space needs at least one category; got an empty list.")
        if not (len(self.parents) == len(self.names) == len(self.paths) == n):
            raise ValueError(
                f"ids, parents, names and paths must have one entry per node; got lengths "
                f"{n}, {len(self.parents)}, {len(self.names)}, {len(self.paths)}."
            )
        for i, parent in enumerate(self.parents):
            if not -1 <= parent < i:
                raise ValueError(
                    f"Node {self.ids[i]!r} (index {i}) has parent index {parent}; expected -1 or an "
                    f"index below {i} (parents must come before children)."
                )
        if len(set(self.ids)) != n:
            raise ValueError("Category ids must be unique; the label space repeats an id.")
        for i, path in enumerate(self.paths):
            self._lookup.setdefault(normalize_path(path), i)
        for i, node_id in enumerate(self.ids):
            self._lookup[node_id] = i

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_taxonomy(cls, taxonomy: Any) -> LabelSpace:
        """Build from a ``multimodal_cat.taxonomy.Taxonomy`` (anything with ``to_index()`` and ``name``)
        or from its ``TaxonomyIndex``."""
        if isinstance(taxonomy, LabelSpace):
            return taxonomy
        index = taxonomy.to_index() if hasattr(taxonomy, "to_index") else taxonomy
        if not all(hasattr(index, key) for key in ("ids", "parents", "names", "paths")):
            raise TypeError(
                f"Expected a Taxonomy, TaxonomyIndex or LabelSpace; got {type(taxonomy).__name__}."
            )
        return cls(
            ids=list(index.ids),
            parents=[int(p) for p in index.parents],
            names=list(index.names),
            paths=list(index.paths),
            taxonomy_name=str(getattr(taxonomy, "name", "custom")),
        )

    @classmethod
    def from_paths(
        cls, paths: Iterable[str], ids: Iterable[str] | None = None, name: str = "custom"
    ) -> LabelSpace:
        """Build a tree from ``"A > B > C"`` strings; missing ancestors are created.

        Args:
            paths: Full paths; each may be a leaf or an inner node.
            ids: Optional ids for ``paths`` (same order); other nodes use their full path as id.
            name: Taxonomy name stored with the labels.
        """
        paths = list(paths)
        given = dict(zip(paths, ids, strict=True)) if ids is not None else {}
        index: dict[str, int] = {}
        out_ids: list[str] = []
        parents: list[int] = []
        names: list[str] = []
        out_paths: list[str] = []
        for path in paths:
            parts = [p.strip() for p in str(path).split(">") if p.strip()]
            if not parts:
                raise ValueError(f"Empty category path {path!r}; expected 'A > B > C'.")
            for depth in range(1, len(parts) + 1):
                full = PATH_SEPARATOR.join(parts[:depth])
                if full in index:
                    continue
                index[full] = len(out_ids)
                parents.append(index[PATH_SEPARATOR.join(parts[: depth - 1])] if depth > 1 else -1)
                out_ids.append(str(given.get(path, full)) if depth == len(parts) else full)
                names.append(parts[depth - 1])
                out_paths.append(full)
        return cls(out_ids, parents, names, out_paths, name)

    @property
    def depths(self) -> list[int]:
        """Depth of each node, roots at 1."""
        depths: list[int] = []
        for parent in self.parents:
            depths.append(1 if parent < 0 else depths[parent] + 1)
        return depths

    @property
    def leaves(self) -> list[int]:
        """Indices of the nodes without children, in node order."""
        has_child = set(p for p in self.parents if p >= 0)
        return [i for i in range(len(self.ids)) if i not in has_child]

    def ancestors(self, index: int, include_self: bool = True) -> list[int]:
        """Indices from the root down to ``index``."""
        chain = [index] if include_self else []
        parent = self.parents[index]
        while parent >= 0:
            chain.append(parent)
            parent = self.parents[parent]
        return chain[::-1]

    def node_index(self, category: str) -> int:
        """Index of a category given by id or by full path (case and spacing tolerant).

        Raises:
            KeyError: When neither an id nor a path matches.
        """
        key = str(category)
        if key in self._lookup:
            return self._lookup[key]
        found = self._lookup.get(normalize_path(key))
        if found is None:
            raise KeyError(
                f"Unknown category {category!r}: not an id nor a full path of taxonomy "
                f"{self.taxonomy_name!r} ({len(self.ids)} categories)."
            )
        return found
