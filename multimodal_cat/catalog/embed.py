"""Catalog products and shopper queries into vectors, through the embedding cache.

One :class:`CatalogEncoders` holds the text and/or image encoder an index is built with; the
same object encodes queries, so a query is made with the index's encoders or refused by
:meth:`CatalogIndex.check_encoder`. Images are hashed by their decoded pixels (as the
checkpoint towers do), texts by their content; both are looked up in the
:class:`~multimodal_cat.encoders.EmbeddingCache` before anything is encoded.

Example:
    >>> enc = CatalogEncoders.from_names(text="minilm", image=None)  # doctest: +SKIP
    >>> enc.keys  # doctest: +SKIP
    {'text': 'text:minilm|pool=mean|max_length=64'}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from multimodal_cat.catalog.index import CatalogIndex
from multimodal_cat.encoders.cache import EmbeddingCache, content_hash, encode_cached
from multimodal_cat.products import Product


def product_text(product: Product) -> str:
    """The text a product is searched by: its title, else its brand and description."""
    if product.title.strip():
        return product.title.strip()
    return " ".join(part.strip() for part in (product.brand, product.description) if part.strip())


def pixel_hash(image: Image.Image) -> str:
    """Content hash of a decoded image (mode, size and pixels): a re-saved file keeps it."""
    return content_hash(f"{image.mode}{image.size}".encode() + image.tobytes())


class CheckpointTower:
    """One tower of a trained checkpoint (its pooled output, what the fusion head reads) seen
    as a catalog encoder: ``key`` names the tower's weights, so an index built with one
    checkpoint refuses queries encoded by another."""

    def __init__(self, tower: Any, checkpoint: str, kind: str, max_length: int | None) -> None:
        self.tower, self.checkpoint, self.kind = tower, checkpoint, kind
        self.key, self.name, self.max_length = tower.key, checkpoint, max_length
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            probe = ["a"] if self.kind == "text" else [Image.new("RGB", (32, 32))]
            self._dim = int(self.tower.encode(probe, 1).shape[1])
        return self._dim

    def encode(self, items: Sequence, batch_size: int = 32, normalize: bool = False,
               bf16: bool = False, **_: Any) -> np.ndarray:
        return self.tower.encode(list(items), batch_size, normalize=normalize, bf16=bf16)


class CatalogEncoders:
    """The text and/or image encoder of a catalog index, with the embedding cache.

    Args:
        text: a TextEncoder (or anything with ``key``, ``dim`` and ``encode``), or None.
        image: an ImageEncoder, or None.
        cache: the embedding cache (default: ``$MULTIMODAL_CAT_CACHE``).
        batch_size: items per forward pass.
    """

    def __init__(
        self,
        text: Any = None,
        image: Any = None,
        *,
        cache: EmbeddingCache | None = None,
        batch_size: int = 32,
    ) -> None:
        if text is None and image is None:
            raise ValueError("expected a text encoder, an image encoder or both; found neither")
        self.text, self.image = text, image
        self.cache = cache if cache is not None else EmbeddingCache()
        self.batch_size = batch_size

    @classmethod
    def from_names(
        cls,
        text: str | None = "minilm",
        image: str | None = "dinov2-small",
        *,
        max_length: int = 64,
        cache: EmbeddingCache | None = None,
    ) -> CatalogEncoders:
        """Load encoders by short name (``minilm``, ``dinov2-small``), hub id or folder."""
        from multimodal_cat.encoders.image import ImageEncoder
        from multimodal_cat.encoders.text import TextEncoder

        return cls(
            TextEncoder.from_name(text, max_length=max_length) if text else None,
            ImageEncoder.from_name(image) if image else None,
            cache=cache,
        )

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str, *, cache: EmbeddingCache | None = None
    ) -> CatalogEncoders:
        """The towers of a trained checkpoint (``multimodal-cat train`` output) as encoders.

        Raises:
            CheckpointError: the folder holds no loadable checkpoint.
        """
        from multimodal_cat.predictors.checkpoint import TowerEmbedder, load_checkpoint

        model, processor = load_checkpoint(str(checkpoint))
        model.eval()
        towers = {kind: CheckpointTower(tower, str(checkpoint), kind,
                                        processor.max_length if kind == "text" else None)
                  for kind, tower in TowerEmbedder(model, processor).towers.items()}
        return cls(towers.get("text"), towers.get("image"), cache=cache)

    @property
    def keys(self) -> dict[str, str]:
        """Encoder key per modality: what an index records and checks queries against."""
        found = {"text": self.text, "image": self.image}
        return {modality: enc.key for modality, enc in found.items() if enc is not None}

    @property
    def specs(self) -> dict[str, dict[str, Any]]:
        """How to load these encoders again (saved with an index, read by :meth:`from_specs`)."""
        specs: dict[str, dict[str, Any]] = {}
        for modality, enc in (("text", self.text), ("image", self.image)):
            if isinstance(enc, CheckpointTower):
                specs[modality] = {"checkpoint": enc.checkpoint}
        if specs:
            return specs
        if self.text is not None:
            specs["text"] = {"name": self.text.name, "max_length": self.text.max_length}
        if self.image is not None:
            specs["image"] = {"name": self.image.name}
        return specs

    @classmethod
    def from_specs(
        cls, specs: dict[str, dict[str, Any]], *, cache: EmbeddingCache | None = None
    ) -> CatalogEncoders:
        """Load the encoders an index was built with (see :attr:`specs`)."""
        text, image = specs.get("text"), specs.get("image")
        checkpoint = (text or image or {}).get("checkpoint")
        if checkpoint:
            encoders = cls.from_checkpoint(checkpoint, cache=cache)
            return cls(encoders.text if text else None, encoders.image if image else None,
                       cache=encoders.cache)
        return cls.from_names(
            text["name"] if text else None,
            image["name"] if image else None,
            max_length=text.get("max_length", 64) if text else 64,
            cache=cache,
        )

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of texts; zero rows for blank ones."""
        out = np.zeros((len(texts), self.text.dim), np.float32)
        rows = [i for i, text in enumerate(texts) if text and text.strip()]
        if rows:
            items = [texts[i] for i in rows]
            out[rows] = encode_cached(
                self.text, items, [content_hash(t) for t in items], self.cache,
                batch_size=self.batch_size, normalize=True,
            )
        return out

    def encode_images(self, images: Sequence[Image.Image | None]) -> np.ndarray:
        """Unit vectors of decoded images; zero rows for missing ones."""
        out = np.zeros((len(images), self.image.dim), np.float32)
        rows = [i for i, image in enumerate(images) if image is not None]
        if rows:
            items = [images[i].convert("RGB") for i in rows]  # type: ignore[union-attr]
            out[rows] = encode_cached(
                self.image, items, [pixel_hash(im) for im in items], self.cache,
                batch_size=self.batch_size, normalize=True,
            )
        return out

    def encode_products(self, products: Sequence[Product]) -> dict[str, np.ndarray]:
        """``{"text": ..., "image": ...}`` unit vectors of products (zero rows where missing)."""
        vectors = {}
        if self.text is not None:
            vectors["text"] = self.encode_texts([product_text(p) for p in products])
        if self.image is not None:
            vectors["image"] = self.encode_images([p.image for p in products])
        return vectors

    def check(self, index: CatalogIndex, modality: str) -> None:
        """Refuse to query ``index`` with this object's ``modality`` encoder unless it made it."""
        if modality not in self.keys:
            raise ValueError(f"no {modality} encoder was loaded to encode the query")
        index.check_encoder(modality, self.keys[modality])
