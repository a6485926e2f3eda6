"""Build training datasets from feed-like tables: rows of image path, text, category and tags.

Categories may be given as ids or full paths (``"Apparel > Shoes"``, case and spacing
tolerant) and become node indices of the label space; unknown ones raise a clear error or,
with ``on_unknown="skip"``, are dropped and counted. Tags become one 0/1 vector per row over
all tag values, with -100 for groups the row does not state.

Example:
    >>> rows = [{"title": "Red sneakers", "category": "Apparel > Shoes", "color": "red"}]
    >>> space = LabelSpace.from_paths(["Apparel > Shoes", "Apparel > Shirts"])
    >>> ds, report = build_dataset(rows, space, FeedColumns(tags={"color": "color"}),
    ...                            tag_groups=[TagGroup("color", ("red", "blue"))])
    >>> ds[0]["labels"], ds[0]["tag_labels"]
    (1, [1.0, 0.0])
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import Dataset as TorchDataset

from multimodal_cat.errors import optional_import
from multimodal_cat.modeling.labels import LabelSpace, TagGroup, build_tag_groups, normalize_path
from multimodal_cat.taxonomy.index import IGNORE_INDEX

MULTI_VALUE_SEPARATORS = ("|", ";", ",")


@dataclass
class FeedColumns:
    """Which table column holds what; ``None`` = not in the table.

    Attributes:
        category: Category id or full path.
        title, description, brand: Text fields.
        image: Image path (relative paths are resolved against ``image_root``).
        tags: Attribute name -> column holding its value(s).
    """

    category: str | None = "category"
    title: str | None = "title"
    description: str | None = "description"
    brand: str | None = "brand"
    image: str | None = "image"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetReport:
    """What happened while building a dataset."""

    rows: int = 0
    kept: int = 0
    unlabelled: int = 0
    unknown_categories: Counter = field(default_factory=Counter)
    unknown_tag_values: Counter = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return self.rows - self.kept


def _is_blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or str(value).strip() == ""
    )


def read_table(table: Any) -> list[dict[str, Any]]:
    """Rows of a CSV / JSONL / Parquet path, pandas DataFrame, ``datasets.Dataset`` or dict list."""
    if isinstance(table, (str, Path)):
        pd = optional_import("pandas", extra="feeds", purpose="Reading a training table")

        path = Path(table)
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json", ".ndjson"):
            frame = pd.read_json(path, lines=True, dtype=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            frame = pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False
            )
        else:
            raise ValueError(
                f"Cannot tell the format of {path}; expected .csv, .tsv, .jsonl or .parquet."
            )
        return frame.to_dict("records")
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return table.to_dict("records")
    if isinstance(table, Dataset):
        return table.to_list()
    return [dict(row) for row in table]


def infer_tag_groups(
    rows: Sequence[Mapping[str, Any]],
    tag_columns: Mapping[str, str],
    multi_valued: Iterable[str] = (),
) -> list[TagGroup]:
    """Tag groups whose values are the sorted distinct values found in the table."""
    multi = set(multi_valued)
    tags = {}
    for attribute, column in tag_columns.items():
        values: set[str] = set()
        for row in rows:
            values.update(_tag_values(row.get(column), attribute in multi))
        if not values:
            raise ValueError(f"Tag column {column!r} ({attribute}) has no values in the table.")
        tags[attribute] = sorted(values)
    return build_tag_groups(tags, multi)


def _tag_values(value: Any, multi: bool) -> list[str]:
    if _is_blank(value):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if not _is_blank(v)]
    text = str(value).strip()
    if multi:
        for separator in MULTI_VALUE_SEPARATORS:
            if separator in text:
                return [v.strip() for v in text.split(separator) if v.strip()]
    return [text]


def encode_tags(
    row: Mapping[str, Any],
    groups: Sequence[TagGroup],
    columns: Mapping[str, str],
    report: DatasetReport,
) -> list[float]:
    """One row's tag vector: 0/1 per value, -100 for every value of a group the row does not state."""
    vector: list[float] = []
    for group in groups:
        column = columns.get(group.attribute)
        values = _tag_values(row.get(column), group.multi_valued) if column else []
        lookup = {v.casefold(): i for i, v in enumerate(group.values)}
        hits = [lookup.get(v.casefold()) for v in values]
        for value, hit in zip(values, hits, strict=True):
            if hit is None:
                report.unknown_tag_values[(group.attribute, value)] += 1
        hits = [h for h in hits if h is not None]
        if not hits:
            vector.extend([float(IGNORE_INDEX)] * len(group.values))
            continue
        vector.extend(1.0 if i in hits else 0.0 for i in range(len(group.values)))
    return vector


def build_dataset(
    table: Any,
    labels: LabelSpace | Any,
    columns: FeedColumns | None = None,
    *,
    tag_groups: Sequence[TagGroup] | Mapping[str, Sequence[str]] | None = None,
    on_unknown: str = "error",
    image_root: str | Path | None = None,
) -> tuple[Dataset, DatasetReport]:
    """Turn a feed-like table into a ``datasets.Dataset`` for :class:`MultimodalCatCollator`.

    Args:
        table: Path (CSV/TSV/JSONL/Parquet), DataFrame, ``datasets.Dataset`` or list of dicts.
        labels: A ``Taxonomy`` or :class:`LabelSpace` (e.g. ``model.label_space``).
        columns: Column names; defaults to :class:`FeedColumns`' defaults.
        tag_groups: The model's tag groups (``model.config.tag_group_list``).
        on_unknown: ``"error"`` (default) raises on categories not in the tree; ``"skip"`` drops
            those rows and counts them in the report.
        image_root: Folder that relative image paths are relative to.

    Returns:
        The dataset (columns ``title``, ``description``, ``brand``, ``image``, ``labels`` and,
        with tag groups, ``tag_labels``) and a :class:`DatasetReport`.

    Raises:
        ValueError: Unknown categories with ``on_unknown="error"``, or an unknown option.
    """
    if on_unknown not in ("error", "skip"):
        raise ValueError(f"on_unknown must be 'error' or 'skip'; got {on_unknown!r}.")
    space = LabelSpace.from_taxonomy(labels)
    columns = columns or FeedColumns()
    groups = build_tag_groups(tag_groups) if tag_groups is not None else []
    rows = read_table(table)
    report = DatasetReport(rows=len(rows))
    records: dict[str, list[Any]] = {
        k: [] for k in ("title", "description", "brand", "image", "labels")
    }
    if groups:
        records["tag_labels"] = []
    for row in rows:
        label = _resolve_category(row, columns.category, space, report)
        if label is None:
            continue
        records["labels"].append(label)
        for key in ("title", "description", "brand"):
            column = getattr(columns, key)
            records[key].append(
                "" if column is None or _is_blank(row.get(column)) else str(row[column])
            )
        records["image"].append(_image_path(row, columns.image, image_root))
        if groups:
            records["tag_labels"].append(encode_tags(row, groups, columns.tags, report))
        report.kept += 1
    if report.unknown_categories and on_unknown == "error":
        examples = ", ".join(repr(c) for c, _ in report.unknown_categories.most_common(5))
        raise ValueError(
            f"{sum(report.unknown_categories.values())} rows have categories that are not in taxonomy "
            f"{space.taxonomy_name!r} (neither ids nor full paths), e.g. {examples}. Fix them, or pass "
            f"on_unknown='skip' to drop those rows."
        )
    return Dataset.from_dict(records), report


def _resolve_category(
    row: Mapping[str, Any], column: str | None, space: LabelSpace, report: DatasetReport
) -> int | None:
    value = row.get(column) if column else None
    if _is_blank(value):
        report.unlabelled += 1
        return IGNORE_INDEX
    try:
        return space.node_index(str(value).strip())
    except KeyError:
        report.unknown_categories[normalize_path(str(value))] += 1
        return None


def _image_path(row: Mapping[str, Any], column: str | None, root: str | Path | None) -> str:
    value = row.get(column) if column else None
    if _is_blank(value):
        return ""
    path = Path(str(value))
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
