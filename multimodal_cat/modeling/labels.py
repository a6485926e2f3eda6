"""The label space a model predicts into: taxonomy nodes and attribute tag groups.

A :class:`LabelSpace` is the tree's flat index (:class:`~multimodal_cat.taxonomy.TaxonomyIndex`:
node ids, parent indices, names, full paths, with depths, leaves and ancestors derived) that the
model stores in its config, so a saved checkpoint can name its predictions without the taxonomy
file. :class:`TagGroup` describes one attribute (``color``, ``material``) whose values the tag
head scores, single-valued (softmax) or multi-valued (sigmoid).

Example:
    >>> space = LabelSpace.from_paths(["Apparel > Shoes > Sneakers", "Apparel > Shirts"])
    >>> space.paths
    ['Apparel', 'Apparel > Shoes', 'Apparel > Shoes > Sneakers', 'Apparel > Shirts']
    >>> space.node_index("apparel > shoes")
    1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multimodal_cat.errors import ConfigurationError
from multimodal_cat.taxonomy.index import PATH_SEPARATOR, TaxonomyIndex, path_key

__all__ = [
    "PATH_SEPARATOR",
    "LabelSpace",
    "TagGroup",
    "build_tag_groups",
    "normalize_path",
    "value_slices",
]

normalize_path = path_key  # the package's one path normaliser, under its older name


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
        ConfigurationError: When a group has no values or repeats a value.
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
            raise ConfigurationError(
                f"Tag group {group.attribute!r} has no values; expected at least one."
            )
        if len(set(group.values)) != len(group.values):
            raise ConfigurationError(
                f"Tag group {group.attribute!r} repeats a value: {list(group.values)}."
            )
    return groups


def value_slices(groups: Sequence[TagGroup]) -> list[slice]:
    """Where each group's values sit in the tag head's output (and in a tag label vector).

    Example:
        >>> value_slices([TagGroup("color", ("red", "blue")), TagGroup("size", ("s",))])
        [slice(0, 2, None), slice(2, 3, None)]
    """
    out: list[slice] = []
    start = 0
    for group in groups:
        out.append(slice(start, start + len(group.values)))
        start += len(group.values)
    return out


class LabelSpace(TaxonomyIndex):
    """The tree index a model predicts into: node ``i`` has id ``ids[i]`` and parent ``parents[i]``.

    A :class:`~multimodal_cat.taxonomy.TaxonomyIndex` with at least one node. Parents always come
    before their children. Built from a ``multimodal_cat.taxonomy.Taxonomy``
    (:meth:`from_taxonomy`), from path strings (:meth:`from_paths`) or from a model config
    (``LabelSpace(ids, parents, names, paths, taxonomy_name)``).

    Raises:
        ConfigurationError: On an empty tree, or lists that do not form one.
    """

    def __post_init__(self) -> None:
        if not self.ids:
            raise ConfigurationError(
                "A label space needs at least one category; got an empty list."
            )
        super().__post_init__()
