"""Build training datasets from feeds: rows of image path, text, category and tags.

The feed is read by :func:`~multimodal_cat.training.feed.read_feed` and its columns matched by
a :class:`~multimodal_cat.feeds.columns.ColumnMap`, as in ``categorize``. Categories may be given
as ids or full paths (``"Apparel > Shoes"``, case and spacing tolerant), in one column or spread
over several, and become node indices of the label space; unknown ones raise a clear error or,
with ``on_unknown="skip"``, are dropped and counted. Tags become one 0/1 vector per row over
all tag values, with -100 for groups the row does not state.

Example:
    >>> rows = [{"title": "Red sneakers", "category": "Apparel > Shoes", "color": "red"}]
    >>> space = LabelSpace.from_paths(["Apparel > Shoes", "Apparel > Shirts"])
    >>> ds, report = build_dataset(rows, space, ColumnMap(tags={"color": "color"}),
    ...                            tag_groups=[TagGroup("color", ("red", "blue"))])
    >>> ds[0]["labels"], ds[0]["tag_labels"]
    (1, [1.0, 0.0])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Dataset as TorchDataset

from multimodal_cat.feeds.columns import ColumnMap, row_to_product
from multimodal_cat.modeling.labels import LabelSpace, TagGroup, build_tag_groups, normalize_path
from multimodal_cat.taxonomy.index import IGNORE_INDEX
from multimodal_cat.training.feed import FeedTable, read_feed, training_columns
from multimodal_cat.training.label_space import (
    category_columns,
    category_value,
    check_category_columns,
)
from multimodal_cat.training.tags import encode_tags

TEXT_COLUMNS = ("title", "description", "brand", "seller_category")


@dataclass
class DatasetReport:
    """What happened while building a dataset."""

    rows: int = 0
    kept: int = 0
    unlabelled: int = 0
    unknown_categories: Counter = field(default_factory=Counter)
    unknown_tag_values: Counter = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Rows left out: unknown categories (with ``on_unknown="skip"``) and unreadable records."""
        return self.rows - self.kept


def build_dataset(
    table: Any,
    labels: LabelSpace | Any,
    columns: ColumnMap | None = None,
    *,
    category: str | Sequence[str] = "category",
    tag_groups: Sequence[TagGroup] | Mapping[str, Sequence[str]] | None = None,
    on_unknown: str = "error",
    image_root: str | Path | None = None,
    images: bool = True,
    format: str | None = None,
) -> tuple[Dataset, DatasetReport]:
    """Turn a feed into a ``datasets.Dataset`` for :class:`MultimodalCatCollator`.

    Args:
        table: Feed path (CSV/TSV/JSONL/Parquet), DataFrame, ``datasets.Dataset``, list of dicts
            or a :class:`~multimodal_cat.training.feed.FeedTable`.
        labels: A ``Taxonomy`` or :class:`LabelSpace` (e.g. ``model.label_space``).
        columns: Which column holds which product field and tag (``ColumnMap(tags=...)``);
            fields left unset are looked up under their usual names, as in ``categorize``.
        category: Category column, or several (a list or ``"a,b,c"``) joined as a path.
        tag_groups: The model's tag groups (``model.config.tag_group_list``).
        on_unknown: ``"error"`` (default) raises on categories not in the tree; ``"skip"`` drops
            those rows and counts them in the report.
        image_root: Folder that relative image paths are relative to.
        images: ``False`` reads no image column (a model without an image tower).
        format: Feed format for a file (default: from its extension).

    Returns:
        The dataset (columns ``title``, ``description``, ``brand``, ``seller_category``,
        ``image``, ``labels`` and, with tag groups, ``tag_labels``) and a :class:`DatasetReport`.

    Raises:
        ValueError: Unknown categories with ``on_unknown="error"``, a column that is not in the
            feed, or an unknown option.
    """
    if on_unknown not in ("error", "skip"):
        raise ValueError(f"on_unknown must be 'error' or 'skip'; got {on_unknown!r}.")
    space = LabelSpace.from_taxonomy(labels)
    groups = build_tag_groups(tag_groups) if tag_groups is not None else []
    feed = table if isinstance(table, FeedTable) else read_feed(table, format)
    names = category_columns(category)
    check_category_columns(names, feed.columns)
    cols = training_columns(
        columns or ColumnMap(), feed.columns, label_columns=names, images=images
    )
    report = DatasetReport(rows=len(feed.rows) + len(feed.errors), malformed=list(feed.errors))
    records: dict[str, list[Any]] = {k: [] for k in (*TEXT_COLUMNS, "image", "labels")}
    if groups:
        records["tag_labels"] = []
    for number, row in enumerate(feed.rows, start=1):
        label = _resolve_category(category_value(row, names), space, report)
        if label is None:
            continue
        product = row_to_product(row, cols, number)
        records["labels"].append(label)
        for key in TEXT_COLUMNS:
            text = getattr(product, key)
            records[key].append(text if text.strip() else "")
        records["image"].append(_image_path(product.image_ref, image_root))
        if groups:
            records["tag_labels"].append(
                encode_tags(row, groups, cols.tags, report.unknown_tag_values)
            )
        report.kept += 1
    if report.unknown_categories and on_unknown == "error":
        examples = ", ".join(repr(c) for c, _ in report.unknown_categories.most_common(5))
        raise ValueError(
            f"{sum(report.unknown_categories.values())} rows have categories that are not in taxonomy "
            f"{space.taxonomy_name!r} (neither ids nor full paths), e.g. {examples}. Fix them, or pass "
            f"on_unknown='skip' to drop those rows."
        )
    return Dataset.from_dict(records), report


def _resolve_category(value: str, space: LabelSpace, report: DatasetReport) -> int | None:
    if not value:
        report.unlabelled += 1
        return IGNORE_INDEX
    try:
        return space.node_index(value)
    except KeyError:
        report.unknown_categories[normalize_path(value)] += 1
        return None


def _image_path(ref: str, root: str | Path | None) -> str:
    if not ref:
        return ""
    path = Path(ref)
    return str(Path(root) / path) if root is not None and not path.is_absolute() else str(path)


class EmbeddingDataset(TorchDataset):
    """In-memory cached embeddings, one dict of tensors per row (fast to index and to collate)."""

    def __init__(self, columns: dict[str, torch.Tensor]) -> None:
        self.columns = columns
        self.size = len(next(iter(columns.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: column[index] for name, column in self.columns.items()}

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)


def embedding_dataset(
    labels: Sequence[int] | np.ndarray,
    image_embeds: np.ndarray | None = None,
    text_embeds: np.ndarray | None = None,
    tag_labels: np.ndarray | None = None,
    image_mask: Sequence[bool] | np.ndarray | None = None,
    text_mask: Sequence[bool] | np.ndarray | None = None,
) -> EmbeddingDataset:
    """A dataset of cached pooled embeddings for the fast path (train only the head).

    Rows without an image (or text) keep any vector (zeros are fine) and a 0 in the mask.
    Use with :class:`~multimodal_cat.training.EmbeddingCollator` (or the default collator).

    Example:
        >>> ds = embedding_dataset([2, 3], text_embeds=np.zeros((2, 384), np.float32))
        >>> sorted(ds.column_names)
        ['labels', 'text_embeds', 'text_mask']
    """
    data: dict[str, torch.Tensor] = {"labels": torch.as_tensor(np.asarray(labels, dtype=np.int64))}
    n = len(data["labels"])
    for name, embeds, mask in (
        ("image", image_embeds, image_mask),
        ("text", text_embeds, text_mask),
    ):
        if embeds is None:
            continue
        embeds = np.asarray(embeds, dtype=np.float32)
        if embeds.ndim != 2 or embeds.shape[0] != n:
            raise ValueError(f"{name}_embeds must have shape ({n}, dim); got {embeds.shape}.")
        data[f"{name}_embeds"] = torch.from_numpy(embeds)
        data[f"{name}_mask"] = torch.as_tensor(
            np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        )
    if len(data) == 1:
        raise ValueError("embedding_dataset needs image_embeds and/or text_embeds; got neither.")
    if tag_labels is not None:
        tags = np.asarray(tag_labels, dtype=np.float32)
        if tags.ndim != 2 or tags.shape[0] != n:
            raise ValueError(f"tag_labels must have shape ({n}, n_tag_values); got {tags.shape}.")
        data["tag_labels"] = torch.from_numpy(tags)
    return EmbeddingDataset(data)
