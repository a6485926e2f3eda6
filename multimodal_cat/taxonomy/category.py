"""The record for one category of a taxonomy tree.

Example:
    >>> c = Category(id="aa-1", name="Clothing", path=("Apparel & Accessories", "Clothing"),
    ...              parent_id="aa", depth=2)
    >>> c.full_path
    'Apparel & Accessories > Clothing'
"""

from __future__ import annotations

from dataclasses import dataclass

from multimodal_cat.taxonomy.index import PATH_SEPARATOR

__all__ = ["PATH_SEPARATOR", "Category"]


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
