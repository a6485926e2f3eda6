"""Tag columns: which values each attribute takes in a feed, and one row's tag vector.

A tag attribute (``color``, ``material``) is read from one feed column; single-valued
attributes hold one value per row, multi-valued ones may hold several separated by ``|``, ``;``
or ``,`` (or a list, in JSON lines and Parquet). A row's tag vector has a 0/1 per value of
every group, and ``-100`` over the whole group when the row states none of its known values.

Example:
    >>> tag_columns(["color", "material=fabric"])
    {'color': 'color', 'material': 'fabric'}
    >>> infer_tag_groups([{"color": "red"}, {"color": "blue"}], {"color": "color"})
    [TagGroup(attribute='color', values=('blue', 'red'), multi_valued=False)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from multimodal_cat.modeling.labels import TagGroup, build_tag_groups
from multimodal_cat.taxonomy.index import IGNORE_INDEX

MULTI_VALUE_SEPARATORS = ("|", ";", ",")

__all__ = ["encode_tags", "infer_tag_groups", "is_blank", "tag_columns", "tag_values"]


def is_blank(value: Any) -> bool:
    """``True`` for ``None``, NaN and strings of only whitespace."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    )


def tag_columns(items: Iterable[str]) -> dict[str, str]:
    """``ATTR[=COLUMN]`` strings (the command's ``--tag-column``) -> attribute -> column."""
    columns = {}
    for item in items:
        attribute, _, column = item.partition("=")
        columns[attribute.strip()] = (column or attribute).strip()
    return columns


def tag_values(value: Any, multi: bool) -> list[str]:
    """The values one cell states (split on the separators when ``multi``)."""
    if is_blank(value):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if not is_blank(v)]
    text = str(value).strip()
    if multi:
        for separator in MULTI_VALUE_SEPARATORS:
            if separator in text:
                return [v.strip() for v in text.split(separator) if v.strip()]
    return [text]


def infer_tag_groups(
    rows: Sequence[Mapping[str, Any]],
    tag_columns: Mapping[str, str],
    multi_valued: Iterable[str] = (),
) -> list[TagGroup]:
    """Tag groups whose values are the sorted distinct values found in the table.

    Raises:
        ValueError: A tag column holds no value at all.
    """
    multi = set(multi_valued)
    tags = {}
    for attribute, column in tag_columns.items():
        values: set[str] = set()
        for row in rows:
            values.update(tag_values(row.get(column), attribute in multi))
        if not values:
            raise ValueError(f"Tag column {column!r} ({attribute}) has no values in the table.")
        tags[attribute] = sorted(values)
    return build_tag_groups(tags, multi)


def encode_tags(
    row: Mapping[str, Any],
    groups: Sequence[TagGroup],
    columns: Mapping[str, str],
    unknown: Counter,
) -> list[float]:
    """One row's tag vector: 0/1 per value, -100 for every value of a group the row does not state.

    Values that are not in their group are counted in ``unknown`` by ``(attribute, value)``.
    """
    vector: list[float] = []
    for group in groups:
        column = columns.get(group.attribute)
        values = tag_values(row.get(column), group.multi_valued) if column else []
        lookup = {v.casefold(): i for i, v in enumerate(group.values)}
        hits = [lookup.get(v.casefold()) for v in values]
        for value, hit in zip(values, hits, strict=True):
            if hit is None:
                unknown[(group.attribute, value)] += 1
        hits = [h for h in hits if h is not None]
        if not hits:
            vector.extend([float(IGNORE_INDEX)] * len(group.values))
            continue
        vector.extend(1.0 if i in hits else 0.0 for i in range(len(group.values)))
    return vector
