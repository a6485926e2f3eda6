"""The frozen-encoder fast path: embed a training set once, then train only the head.

With frozen towers, every epoch would recompute the same tower outputs. :func:`embed_dataset`
runs each tower once over a :func:`~multimodal_cat.training.data.build_dataset` dataset
(reading and filling the on-disk embedding cache, so the next run starts at once) and returns
an :class:`~multimodal_cat.training.data.EmbeddingDataset` of pooled outputs that the same
model trains on through ``image_embeds`` / ``text_embeds`` with
:class:`~multimodal_cat.training.collator.EmbeddingCollator`.

Example:
    >>> train = embed_dataset(dataset, model, processor, cache=EmbeddingCache())  # doctest: +SKIP
    >>> Trainer(model=model, train_dataset=train, data_collator=EmbeddingCollator(), ...)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from multimodal_cat._progress import plural, progress_bar
from multimodal_cat.encoders import EmbeddingCache
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.imaging import try_open_image
from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.predictors.checkpoint import TowerEmbedder
from multimodal_cat.products import Product
from multimodal_cat.training.data import EmbeddingDataset, embedding_dataset

_TEXT_COLUMNS = ("title", "description", "brand", "seller_category")


def _products(rows: dict[str, list[Any]], with_images: bool) -> list[Product]:
    n = len(rows["labels"])
    title, description, brand, seller = (rows.get(key) or [""] * n for key in _TEXT_COLUMNS)
    return [
        Product(
            title=title[i] or "",
            description=description[i] or "",
            brand=brand[i] or "",
            seller_category=seller[i] or "",
            image=try_open_image(str(rows["image"][i] or "")) if with_images else None,
        )
        for i in range(n)
    ]


def _stack(parts: list[dict[str, torch.Tensor]], kind: str, dim: int) -> np.ndarray:
    """One modality's vectors over all chunks; zeros for chunks where no row had it."""
    key = f"{kind}_embeds"
    blocks = [p[key] if key in p else torch.zeros(len(p[f"{kind}_mask"]), dim) for p in parts]
    return torch.cat(blocks).numpy().astype(np.float32, copy=False)


def embed_dataset(
    dataset: Any,
    model: MultimodalCatModel,
    processor: MultimodalCatProcessor,
    *,
    cache: EmbeddingCache | None = None,
    bf16: bool = False,
    batch_size: int = 32,
    chunk_size: int = 512,
    progress: bool = True,
) -> EmbeddingDataset:
    """Pooled tower outputs of every row of ``dataset``, with its labels, for head training.

    Args:
        dataset: A ``datasets.Dataset`` from ``build_dataset`` (``title``, ``description``,
            ``brand``, ``image`` path, ``labels``, optional ``tag_labels``).
        model: The model to train; its towers embed (they should be frozen).
        processor: Its processor (the text template and the tokenizer's length limit).
        cache: Embedding cache read and filled on the way; ``None`` = compute everything.
        bf16: Run the towers under bf16 autocast.
        batch_size: Products per tower call.
        chunk_size: Rows read (images opened) at a time.
        progress: Show a progress bar.

    Returns:
        An :class:`EmbeddingDataset`; rows whose image is missing or unreadable have
        ``image_mask`` 0, rows with empty text have ``text_mask`` 0.
    """
    if len(dataset) == 0:
        raise InvalidArgumentError("embed_dataset got an empty dataset; it needs at least one row.")
    embedder = TowerEmbedder(model, processor, cache=cache, bf16=bf16, batch_size=batch_size)
    with_images = "image" in embedder.towers and "image" in dataset.column_names
    parts = []
    kinds = " and ".join(
        "photos" if k == "image" else "texts" for k in embedder.towers if k == "text" or with_images
    )
    bar = progress_bar(
        total=len(dataset), desc=f"embedding the {kinds} of {plural(len(dataset), 'row')}",
        unit="row", disable=not progress,
    )
    for start in range(0, len(dataset), chunk_size):
        products = _products(dataset[start : start + chunk_size], with_images)
        for first in range(0, len(products), batch_size):  # the bar moves batch by batch
            batch = products[first : first + batch_size]
            parts.append(embedder.embed(batch, allow_empty=True))
            bar.update(len(batch))
    bar.close()
    columns: dict[str, Any] = {"labels": np.asarray(dataset["labels"], dtype=np.int64)}
    for kind, tower in (("image", model.vision_model), ("text", model.text_model)):
        if tower is None:
            continue
        dim = model.fusion.projections[kind].norm.normalized_shape[0]
        columns[f"{kind}_embeds"] = _stack(parts, kind, dim)
        columns[f"{kind}_mask"] = torch.cat([p[f"{kind}_mask"] for p in parts]).numpy()
    if "tag_labels" in dataset.column_names:
        columns["tag_labels"] = np.asarray(dataset["tag_labels"], dtype=np.float32)
    return embedding_dataset(**columns)
