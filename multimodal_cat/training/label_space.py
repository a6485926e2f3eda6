"""What a training run predicts: the category of each row, the label space, class weights.

A row's category is an id or a full path (``"Apparel > Shoes"``) in one column, or a path
spread over several columns (``masterCategory,subCategory,articleType``) that are joined with
`` > ``. The label space is the given taxonomy, or else the tree of every path in the feed.

Example:
    >>> rows = [{"master": "Apparel", "sub": "Shoes"}, {"master": "Home", "sub": ""}]
    >>> [category_value(row, ["master", "sub"]) for row in rows]
    ['Apparel > Shoes', 'Home']
    >>> label_space_for(None, rows, ["master", "sub"]).paths
    ['Apparel', 'Apparel > Shoes', 'Home']
    >>> balanced_class_weights([0, 0, 2, -100], num_nodes=3)
    [0.75, 1.0, 1.5]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from multimodal_cat.modeling.labels import LabelSpace
from multimodal_cat.training.errors import TrainingInputError
from multimodal_cat.training.tags import is_blank

__all__ = [
    "balanced_class_weights",
    "category_columns",
    "category_value",
    "check_category_columns",
    "label_space_for",
]


def category_columns(spec: str | Sequence[str]) -> list[str]:
    """Column names from ``"a,b,c"`` (the command's ``--category-column``) or a list."""
    items = spec.split(",") if isinstance(spec, str) else spec
    return [c.strip() for c in items if c and c.strip()]


def check_category_columns(names: Sequence[str], found: Sequence[str]) -> None:
    """Raise a :class:`TrainingInputError` when a category column is not in the feed."""
    missing = [c for c in names if c not in found]
    if missing and found:
        raise TrainingInputError(
            f"category column(s) {missing} not in the feed; it has {sorted(found)}"
        )


def category_value(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """The row's category (id or path); ``""`` when it has none."""
    parts = [str(row[c]).strip() for c in names if not is_blank(row.get(c))]
    return " > ".join(parts)


def label_space_for(
    taxonomy: Any, rows: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> LabelSpace:
    """The taxonomy's label space, or the tree of the feed's paths when ``taxonomy`` is ``None``.

    Args:
        taxonomy: A shipped name (``google``, ``shopify``), a taxonomy file, a ``Taxonomy`` or
            a :class:`LabelSpace`; ``None`` = the paths found in ``rows``.
        rows: The training rows.
        names: The category column(s).

    Raises:
        TrainingInputError: The taxonomy cannot be loaded, or the feed has no category.
    """
    if isinstance(taxonomy, str):
        from multimodal_cat.taxonomy import Taxonomy

        try:
            taxonomy = Taxonomy.load(taxonomy)
        except (KeyError, OSError, ValueError) as error:
            raise TrainingInputError(f"cannot load taxonomy {taxonomy!r}: {error}") from error
    if taxonomy is not None:
        return LabelSpace.from_taxonomy(taxonomy)
    paths = sorted({value for row in rows if (value := category_value(row, names))})
    if not paths:
        shown = names[0] if len(names) == 1 else ",".join(names)
        raise TrainingInputError(
            f"no categories in column {shown!r}; give --taxonomy or fill the column"
        )
    return LabelSpace.from_paths(paths, name="from-feed")


def balanced_class_weights(labels: Sequence[int], num_nodes: int) -> list[float]:
    """``n / (k * count)`` per labelled node (k = distinct labels); 1.0 for unseen nodes."""
    counts = Counter(label for label in labels if label >= 0)
    total, distinct = sum(counts.values()), max(len(counts), 1)
    return [total / (distinct * counts[i]) if counts.get(i) else 1.0 for i in range(num_nodes)]


def leaf_photo_counts(labels: Sequence[int], has_image: Sequence[bool], leaves: Sequence[int]) -> list[int]:
    """Training rows with a photo per leaf, in the category head's order (``leaves``): what the
    model's photo trust reads (:mod:`multimodal_cat.modeling.trust`). A row labelled with an
    inner node vouches for no leaf.

    Example:
        >>> leaf_photo_counts([1, 1, 2, 0], [True, True, False, True], [1, 2])
        [2, 0]
    """
    counts = Counter(int(label) for label, imaged in zip(labels, has_image, strict=True) if imaged)
    return [counts.get(int(leaf), 0) for leaf in leaves]
