"""Show the training rows that have an image more than once per epoch.

In many catalogues most products have no image (in the fashion benchmark, 32k of 40k training
rows). A fused model then sees few images per epoch and its image pathway trains too little:
the head learns to lean on the text, and products whose text says little (a brand name, a
product code) get weak predictions. Repeating the imaged rows ``times`` times per epoch gives the
image pathway more steps while keeping every text-only row.

Example:
    >>> repeat_indices(np.array([True, False, True]), 2).tolist()
    [0, 1, 2, 0, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from multimodal_cat.training.data import EmbeddingDataset


def repeat_indices(has_image: np.ndarray, times: int) -> np.ndarray:
    """Row order that lists every row once, then the rows with an image ``times - 1`` more times."""
    if isinstance(times, bool) or int(times) != times or times < 1:
        raise ValueError(f"times must be a whole number >= 1; got {times!r}.")
    rows = np.arange(len(has_image))
    imaged = np.flatnonzero(np.asarray(has_image, dtype=bool))
    return np.concatenate([rows] + [imaged] * (int(times) - 1))


def rows_with_images(dataset: Any) -> np.ndarray:
    """Which rows of a training set have an image (``image_mask`` column, else ``image`` paths)."""
    columns = list(dataset.column_names)
    if "image_mask" in columns:
        cached = isinstance(dataset, EmbeddingDataset)
        return np.asarray(
            dataset.columns["image_mask"] if cached else dataset["image_mask"], dtype=bool
        )
    if "image" in columns:
        return np.array([bool(path) for path in dataset["image"]], dtype=bool)
    raise ValueError(
        "Cannot tell which rows have an image: expected an 'image_mask' or 'image' column; "
        f"found {columns}."
    )


def repeat_imaged_rows(dataset: Any, times: int) -> Any:
    """The dataset with each row that has an image repeated ``times`` times in all.

    Works on a ``datasets.Dataset`` from :func:`build_dataset` (``image`` paths, empty when
    missing) and on an :class:`EmbeddingDataset` of cached embeddings (``image_mask``). The
    ``Trainer`` shuffles the rows, so the repeats are spread over the epoch.

    Example:
        >>> from multimodal_cat.training import embedding_dataset
        >>> ds = embedding_dataset([0, 1], image_embeds=np.zeros((2, 4)), image_mask=[True, False])
        >>> len(repeat_imaged_rows(ds, 3))
        4
    """
    order = repeat_indices(rows_with_images(dataset), times)
    if len(order) == len(dataset):
        return dataset
    if isinstance(dataset, EmbeddingDataset):
        index = torch.from_numpy(order.astype(np.int64))
        return EmbeddingDataset({name: col[index] for name, col in dataset.columns.items()})
    return dataset.select(order.tolist())
