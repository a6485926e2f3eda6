"""Collators: turn dataset rows into model batches.

:class:`MultimodalCatCollator` loads images, fills the text template, tokenizes, and stacks
``labels`` / ``tag_labels``; :class:`EmbeddingCollator` stacks cached embeddings for the fast
path. Both give the masks that tell the model which rows lack an image or text.

Example:
    >>> collator = MultimodalCatCollator(processor)  # doctest: +SKIP
    >>> batch = collator([dataset[0], dataset[1]])  # doctest: +SKIP
    >>> model(**batch).loss  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from multimodal_cat.imaging import try_open_image
from multimodal_cat.modeling.processing import MultimodalCatProcessor


def _stack_labels(features: Sequence[Mapping[str, Any]], batch: dict[str, Any]) -> None:
    if "labels" in features[0]:
        batch["labels"] = torch.as_tensor(
            np.array([int(f["labels"]) for f in features]), dtype=torch.long
        )
    if "tag_labels" in features[0] and features[0]["tag_labels"] is not None:
        tags = np.array([np.asarray(f["tag_labels"], dtype=np.float32) for f in features])
        batch["tag_labels"] = torch.as_tensor(tags)


class MultimodalCatCollator:
    """Rows from :func:`~multimodal_cat.training.data.build_dataset` -> model inputs.

    Args:
        processor: The model's :class:`MultimodalCatProcessor` (template, tokenizer, image processor).
    """

    def __init__(self, processor: MultimodalCatProcessor) -> None:
        self.processor = processor

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        products = []
        for row in features:
            fields = {k: v for k, v in row.items() if k not in ("labels", "tag_labels", "image")}
            image = row.get("image")
            fields["image"] = (
                image if isinstance(image, Image.Image) else try_open_image(str(image or ""))
            )
            products.append(fields)
        batch = dict(self.processor(products))
        _stack_labels(features, batch)
        return batch


class EmbeddingCollator:
    """Rows of cached pooled embeddings (``image_embeds`` / ``text_embeds``, optional masks) -> batch.

    A row whose embedding is ``None`` gets zeros and a 0 in its mask.
    """

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        first = features[0]
        if all(isinstance(v, torch.Tensor) for v in first.values()):  # EmbeddingDataset rows
            return {k: torch.stack([f[k] for f in features]) for k in first}
        batch: dict[str, Any] = {}
        for name in ("image", "text"):
            key = f"{name}_embeds"
            if key not in features[0] and not any(f.get(key) is not None for f in features):
                continue
            present = [f.get(key) is not None for f in features]
            dim = (
                next(len(f[key]) for f, p in zip(features, present, strict=True) if p)
                if any(present)
                else 0
            )
            rows = [
                np.asarray(f[key], dtype=np.float32) if p else np.zeros(dim, dtype=np.float32)
                for f, p in zip(features, present, strict=True)
            ]
            batch[key] = torch.as_tensor(np.stack(rows))
            mask = [
                bool(f.get(f"{name}_mask", True)) and p
                for f, p in zip(features, present, strict=True)
            ]
            batch[f"{name}_mask"] = torch.tensor(mask)
        _stack_labels(features, batch)
        return batch
