"""Text and image encoders, pooling, and an on-disk embedding cache.

Names are imported lazily, so ``from multimodal_cat.encoders import EmbeddingCache``
does not import torch or transformers.

Example:
    >>> from multimodal_cat.encoders import TextEncoder, ImageEncoder  # doctest: +SKIP
    >>> text = TextEncoder.from_name("minilm", pooling="mean", max_length=64)  # doctest: +SKIP
    >>> image = ImageEncoder.from_name("dinov2-small", pooling="cls_mean")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "EmbeddingCache": "cache",
    "content_hash": "cache",
    "encode_cached": "cache",
    "ImageEncoder": "image",
    "image_encoder_key": "image",
    "POOLING_MODES": "pooling",
    "pool": "pooling",
    "MissingEncoderPackageError": "registry",
    "UnknownEncoderError": "registry",
    "resolve_encoder": "registry",
    "TextEncoder": "text",
    "text_encoder_key": "text",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return list(__all__)
