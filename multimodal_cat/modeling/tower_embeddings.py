"""Pooled tower outputs of a :class:`MultimodalCatModel` for products, cached on disk.

The towers' pooled outputs (``image_embeds`` / ``text_embeds``) are what the fusion head reads.
:class:`TowerEmbedder` computes them for a batch of products, caching each by content hash (the
rendered text, the decoded image's pixels) and by tower (a digest of its weights, its pooling
and the text length limit), so a second pass over the same products only reads the cache. The
checkpoint predictor uses it at inference and the trainer's frozen-encoder fast path uses it to
embed a training set once.

Example:
    >>> embedder = TowerEmbedder(model, processor, cache=EmbeddingCache())  # doctest: +SKIP
    >>> embedder.embed([Product(title="Red cotton t-shirt")])["text_embeds"].shape  # doctest: +SKIP
    torch.Size([1, 384])
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from multimodal_cat.encoders import EmbeddingCache, content_hash, encode_cached
from multimodal_cat.encoders._arrays import batched
from multimodal_cat.encoders._base import autocast, model_device
from multimodal_cat.modeling.modeling import MultimodalCatModel
from multimodal_cat.modeling.processing import MultimodalCatProcessor
from multimodal_cat.products import Product


def tower_fingerprint(tower: torch.nn.Module) -> str:
    """A short digest of a tower's weights: the cache key part that names the encoder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def image_hash(image: Image.Image) -> str:
    """Content hash of a decoded image (its mode, size and pixels)."""
    return content_hash(f"{image.mode}{image.size}".encode() + image.tobytes())


class _Tower:
    """One tower of the model seen as an encoder (``key``, ``dim``, ``encode``) for the cache."""

    def __init__(self, model: MultimodalCatModel, processor: MultimodalCatProcessor, kind: str):
        self.model, self.processor, self.kind = model, processor, kind
        tower = model.vision_model if kind == "image" else model.text_model
        pooling = model.config.vision_pooling if kind == "image" else model.config.text_pooling
        extra = f"|max_length={processor.max_length}" if kind == "text" else ""
        self.key = f"{kind}:tower-{tower_fingerprint(tower)}|pool={pooling}{extra}"

    def encode(
        self,
        items: Sequence[Any],
        batch_size: int = 32,
        normalize: bool = False,
        bf16: bool = False,
    ) -> np.ndarray:
        outputs = []
        device = model_device(self.model)
        with torch.inference_mode(), autocast(device, bf16):
            for chunk in batched(items, batch_size):
                outputs.append(self._encode_chunk(list(chunk), device).float().cpu().numpy())
        return np.concatenate(outputs)

    def _encode_chunk(self, chunk: list[Any], device: torch.device) -> torch.Tensor:
        if self.kind == "text":
            tokens = self.processor.encode_text(chunk)
            return self.model.get_text_features(**{k: v.to(device) for k, v in tokens.items()})
        pixels = self.processor.image_processor(images=chunk, return_tensors="pt")["pixel_values"]
        return self.model.get_image_features(pixels.to(device))


class TowerEmbedder:
    """Compute (or read from the cache) the pooled tower outputs of products.

    Args:
        model: The model whose towers embed (its towers are what the cache key names).
        processor: Its processor (text template, tokenizer, image processor).
        cache: Embedding cache; ``None`` computes every time.
        bf16: Run the towers under bf16 autocast (CPU or GPU).
        batch_size: Products per tower call.
    """

    def __init__(
        self,
        model: MultimodalCatModel,
        processor: MultimodalCatProcessor,
        *,
        cache: EmbeddingCache | None = None,
        bf16: bool = False,
        batch_size: int = 32,
    ) -> None:
        self.processor, self.cache, self.bf16, self.batch_size = processor, cache, bf16, batch_size
        self.towers = {
            kind: _Tower(model, processor, kind)
            for kind, tower in (("image", model.vision_model), ("text", model.text_model))
            if tower is not None
        }

    def _embed(self, kind: str, items: list[Any], hashes: list[str]) -> torch.Tensor:
        tower = self.towers[kind]
        if self.cache is None:
            vectors = tower.encode(items, self.batch_size, bf16=self.bf16)
        else:
            vectors = encode_cached(
                tower, items, hashes, self.cache, batch_size=self.batch_size, bf16=self.bf16
            )
        return torch.from_numpy(vectors)

    def _text(self, products: Sequence[Product], n: int) -> dict[str, torch.Tensor]:
        texts = self.processor.texts(products)
        mask = [bool(t.strip()) for t in texts]
        out = {"text_mask": torch.tensor(mask)}
        rows = [i for i in range(n) if mask[i]]
        if rows:
            found = self._embed(
                "text", [texts[i] for i in rows], [content_hash(texts[i]) for i in rows]
            )
            out["text_embeds"] = torch.zeros(n, found.shape[1])
            out["text_embeds"][rows] = found
        return out

    def _image(self, products: Sequence[Product], n: int) -> dict[str, torch.Tensor]:
        out = {"image_mask": torch.tensor([p.image is not None for p in products])}
        rows = [i for i, p in enumerate(products) if p.image is not None]
        if rows:
            images = [products[i].image.convert("RGB") for i in rows]  # type: ignore[union-attr]
            found = self._embed("image", images, [image_hash(im) for im in images])
            out["image_embeds"] = torch.zeros(n, found.shape[1])
            out["image_embeds"][rows] = found
        return out

    def embed(
        self, products: Sequence[Product], *, allow_empty: bool = False
    ) -> dict[str, torch.Tensor]:
        """``text_embeds`` / ``image_embeds`` (zeros where missing) and their masks.

        A modality no product has gets only its (all-false) mask.

        Raises:
            ValueError: When every product lacks both text and image, unless ``allow_empty``.
        """
        n, inputs = len(products), {}
        if "text" in self.towers:
            inputs.update(self._text(products, n))
        if "image" in self.towers:
            inputs.update(self._image(products, n))
        if not allow_empty and "text_embeds" not in inputs and "image_embeds" not in inputs:
            raise ValueError("every product in the batch lacks both text and image")
        return inputs
