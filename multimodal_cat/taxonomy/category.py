"""Records for one category and for the flat index form of a tree.

Example:
    >>> c = Category(id="aa-1", name="Clothing", path=("Apparel & Accessories", "Clothing"),
    ...              parent_id="aa", depth=2)
    >>> c.full_path
    'Apparel & Accessories > Clothing'
"""

from __future__ import annotations

from dataclasses import dataclass

PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class Category:
    """One node of a taxonomy tree.

    Attributes:
        id: Stable id in its tree (``"aa-1-1"`` for Shopify, ``"5322"`` for Google).
        name: The category's own name (last element of ``path``).
        path: Names from the root down to this category.
        parent_id: Id of the parent, ``None`` for a root.
        depth: 1 for roots, 2 for their children, and so on.
        attributes: Shopify attribute handles (e.g. ``("color", "target_gender")``), else empty.
    """

    id: str
    name: str
    path: tuple[str, ...]
    parent_id: str | None
    depth: int
    attributes: tuple[str, ...] = ()

    @property
    def full_path(self) -> str:
        """The path as one string, ``"A > B > C"``."""
        return PATH_SEPARATOR.join(self.path)

    @property
    def is_root(self) -> bool:
        """True when the category has no parent."""
        return self.parent_id is None


@dataclass(frozen=True)
class TaxonomyIndex:
    """A tree as parallel lists, in the tree's iteration order (parents before children).

    This is the form a classification head uses: position ``i`` is class ``i``.

    Attributes:
        ids: Category ids.
        parents: Position of each category's parent, ``-1`` for roots.
        names: Category names.
        paths: Full path strings (``"A > B > C"``).
        depths: Depth of each category (roots are 1).
    """

    ids: list[str]
    parents: list[int]
    names: list[str]
    paths: list[str]
    depths: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, category_id: str) -> int:
        """Position of ``category_id`` in the index; ``KeyError`` when absent."""
        lookup = self.__dict__.get("_positions")
        if lookup is None:
            lookup = {cid: i for i, cid in enumerate(self.ids)}
            object.__setattr__(self, "_positions", lookup)
        try:
            return lookup[category_id]
        except KeyError:
            raise KeyError(f"category id {category_id!r} is not in this index") from None
