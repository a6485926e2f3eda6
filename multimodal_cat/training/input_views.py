"""The held-out rows as each kind of input sees them: text and image, text alone, image alone.

Calibration, the auto-accept thresholds and the tag gate are measured per kind of input a
product carries (``"text+image"``, ``"text"``, ``"image"``, the names of
:attr:`Prediction.inputs <multimodal_cat.predictions.Prediction.inputs>`): the same evaluation
rows with the image or the text removed. Works on cached embeddings
(:class:`~multimodal_cat.training.data.EmbeddingDataset`) and on ``datasets.Dataset`` rows with
image paths.

Example:
    >>> from multimodal_cat.training import embedding_dataset
    >>> ds = embedding_dataset([0, 1], image_embeds=np.zeros((2, 4)), text_embeds=np.zeros((2, 3)),
    ...                        image_mask=[True, False])
    >>> [len(input_view(ds, kind)) for kind in ("text+image", "text", "image")]
    [1, 2, 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from multimodal_cat.training.data import TEXT_COLUMNS, EmbeddingDataset
from multimodal_cat.training.sampling import rows_with_images

__all__ = ["input_view", "rows_with_text", "without_images", "without_text"]


def without_images(dataset: Any) -> Any:
    """The same rows with every image removed (cached embeddings or image paths)."""
    if isinstance(dataset, EmbeddingDataset):
        columns = dict(dataset.columns)
        columns["image_mask"] = torch.zeros_like(columns["image_mask"])
        return EmbeddingDataset(columns)
    return dataset.map(lambda _: {"image": ""}, desc="text-only copy", load_from_cache_file=False)


def without_text(dataset: Any) -> Any:
    """The same rows with all their text removed (cached embeddings or text columns)."""
    if isinstance(dataset, EmbeddingDataset):
        columns = dict(dataset.columns)
        if "text_mask" in columns:
            columns["text_mask"] = torch.zeros_like(columns["text_mask"])
        return EmbeddingDataset(columns)
    blank = {name: "" for name in TEXT_COLUMNS if name in dataset.column_names}
    return dataset.map(lambda _: blank, desc="image-only copy", load_from_cache_file=False)


def rows_with_text(dataset: Any) -> np.ndarray:
    """Which rows have some text (``text_mask``, else any non-empty text column)."""
    if isinstance(dataset, EmbeddingDataset):
        if "text_mask" not in dataset.columns:
            return np.zeros(len(dataset), dtype=bool)
        return dataset.columns["text_mask"].numpy().astype(bool)
    texts = [dataset[name] for name in TEXT_COLUMNS if name in dataset.column_names]
    if not texts:
        return np.zeros(len(dataset), dtype=bool)
    return np.array([any(str(v or "").strip() for v in row) for row in zip(*texts, strict=True)])


def _images(dataset: Any) -> np.ndarray:
    if isinstance(dataset, EmbeddingDataset) and "image_mask" not in dataset.columns:
        return np.zeros(len(dataset), dtype=bool)
    try:
        return rows_with_images(dataset)
    except ValueError:  # a text-only set
        return np.zeros(len(dataset), dtype=bool)


def _select(dataset: Any, rows: np.ndarray) -> Any:
    if isinstance(dataset, EmbeddingDataset):
        index = torch.from_numpy(np.flatnonzero(rows).astype(np.int64))
        return EmbeddingDataset({name: col[index] for name, col in dataset.columns.items()})
    return dataset.select(np.flatnonzero(rows).tolist())


def input_view(dataset: Any, kind: str) -> Any:
    """The rows of ``dataset`` that carry what ``kind`` needs, showing only that: ``"text+image"``
    (rows with both), ``"text"`` (rows with text, images removed), ``"image"`` (rows with an
    image, text removed). May be empty."""
    image, text = _images(dataset), rows_with_text(dataset)
    if kind == "text+image":
        return _select(dataset, image & text)
    if kind == "text":
        return without_images(_select(dataset, text)) if image.any() else _select(dataset, text)
    if kind == "image":
        return without_text(_select(dataset, image))
    raise ValueError(f"kind must be 'text+image', 'text' or 'image'; got {kind!r}.")
