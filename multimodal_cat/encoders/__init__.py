"""Text and image encoders, pooling, and an on-disk embedding cache.

Names are imported lazily, so ``from multimodal_cat.encoders import EmbeddingCache``
does not import torch or transformers.

Example:
    >>> from multimodal_cat.encoders import TextEncoder, ImageEncoder  # doctest: +SKIP
    >>> text = TextEncoder.from_name("minilm", pooling="mean", max_length=64)  # doctest: +SKIP
    >>> image = ImageEncoder.from_name("dinov2-small", pooling="cls_mean")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multimodal_cat._lazy import lazy_exports

if TYPE_CHECKING:
    from multimodal_cat.encoders.cache import EmbeddingCache, content_hash, encode_cached
    from multimodal_cat.encoders.image import ImageEncoder, image_encoder_key
    from multimodal_cat.encoders.pooling import POOLING_MODES, pool
    from multimodal_cat.encoders.registry import (
        MissingEncoderPackageError,
        UnknownEncoderError,
        resolve_encoder,
    )
    from multimodal_cat.encoders.text import TextEncoder, text_encoder_key

_EXPORTS: dict[str, str] = {
    "EmbeddingCache": "multimodal_cat.encoders.cache",
    "content_hash": "multimodal_cat.encoders.cache",
    "encode_cached": "multimodal_cat.encoders.cache",
    "ImageEncoder": "multimodal_cat.encoders.image",
    "image_encoder_key": "multimodal_cat.encoders.image",
    "POOLING_MODES": "multimodal_cat.encoders.pooling",
    "pool": "multimodal_cat.encoders.pooling",
    "MissingEncoderPackageError": "multimodal_cat.encoders.registry",
    "UnknownEncoderError": "multimodal_cat.encoders.registry",
    "resolve_encoder": "multimodal_cat.encoders.registry",
    "TextEncoder": "multimodal_cat.encoders.text",
    "text_encoder_key": "multimodal_cat.encoders.text",
}

__all__ = [
    "EmbeddingCache",
    "ImageEncoder",
    "MissingEncoderPackageError",
    "POOLING_MODES",
    "TextEncoder",
    "UnknownEncoderError",
    "content_hash",
    "encode_cached",
    "image_encoder_key",
    "pool",
    "resolve_encoder",
    "text_encoder_key",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
