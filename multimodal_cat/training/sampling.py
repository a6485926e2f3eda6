"""Show the training rows that have an image more than once per epoch, or in more than one view.

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


def weak_text(title: str | None, brand: str | None) -> str:
    """The weak title a training view pairs with the image: the brand, else the title's first word.

    Example:
        >>> weak_text("Puma Men Black Running Shoes", ""), weak_text("Red mug", "Acme")
        ('Puma', 'Acme')
    """
    if brand and str(brand).strip():
        return str(brand).strip()
    words = str(title or "").split()
    return words[0] if words else ""


def _view_rows(dataset: Any, rows: np.ndarray, kind: str) -> Any:
    """Copies of ``rows`` that keep the image and drop (``image``) or weaken (``weak``) the text."""
    part = dataset.select(rows.tolist())
    weak = [weak_text(t, b) for t, b in zip(part["title"], part["brand"], strict=True)]

    def change(row: dict[str, Any], index: int) -> dict[str, Any]:
        title = weak[index] if kind == "weak" else ""
        return {"title": title, "description": "", "brand": "", "seller_category": ""}

    return part.map(change, with_indices=True, desc=f"{kind} views", load_from_cache_file=False)


def add_input_views(dataset: Any, *, image_only: int = 0, weak_text_views: int = 0) -> Any:
    """The training set plus copies of its imaged rows with the text removed or weakened.

    Most training rows carry a full title, so a fused model learns to read the title and barely
    trains the paths a user also takes: a photo alone (no title), or a photo with a title that
    says little (a brand name). ``image_only`` adds that many copies of every row that has an
    image with all its text removed; ``weak_text_views`` adds copies whose text is only the
    brand (else the title's first word). Labels and tags stay. The copies come after the
    originals, so a frozen-tower run finds their images in the embedding cache.

    Args:
        dataset: A ``datasets.Dataset`` from :func:`~multimodal_cat.training.data.build_dataset`.
        image_only: Copies per imaged row without text.
        weak_text_views: Copies per imaged row with a brand-word text.

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"title": ["Puma Black Shoes", "Mug"], "description": ["", ""],
        ...     "brand": ["", ""], "seller_category": ["", ""], "image": ["a.jpg", ""],
        ...     "labels": [0, 1]})
        >>> views = add_input_views(ds, image_only=1, weak_text_views=1)
        >>> list(views["title"]), list(views["image"])
        (['Puma Black Shoes', 'Mug', '', 'Puma'], ['a.jpg', '', 'a.jpg', 'a.jpg'])
    """
    from datasets import concatenate_datasets

    for name, value in (("image_only", image_only), ("weak_text_views", weak_text_views)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0; got {value!r}.")
    imaged = np.flatnonzero(rows_with_images(dataset))
    if not len(imaged) or image_only + weak_text_views == 0:
        return dataset
    parts = [dataset]
    parts += [_view_rows(dataset, imaged, "image")] * int(image_only)
    parts += [_view_rows(dataset, imaged, "weak")] * int(weak_text_views)
    return concatenate_datasets(parts)
