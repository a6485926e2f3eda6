"""An aligned image-text encoder pair (CLIP-like) for zero-shot categorization from images.

Models such as CLIP, SigLIP or ALIGN embed images and texts in one space: the cosine between a
product photo and a category's name says how well they match, with no training. This module
wraps any such Hugging Face checkpoint (a model with ``get_image_features`` and
``get_text_features``, and its processor) so that :class:`~multimodal_cat.predictors.ZeroShotCategorizer`
can add an image term to its text scores.

Example:
    >>> pair = ImageTextEncoder.load("openai/clip-vit-base-patch32")  # doctest: +SKIP
    >>> pair.encode_texts(["a photo of sneakers"]).shape  # doctest: +SKIP
    (1, 512)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from multimodal_cat.encoders._arrays import l2_normalize
from multimodal_cat.encoders._base import run_batches
from multimodal_cat.errors import InputTypeError, InvalidArgumentError

PROMPT = "a photo of {name}, a type of {parent}"
PROMPT_ROOT = "a photo of {name}"


def _features(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor in most versions, a model output in some."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise InputTypeError(f"cannot read features from {type(output).__name__}")
    return pooled


class ImageTextEncoder:
    """Embed images and texts into one space with a CLIP-like model.

    Args:
        model: A model with ``get_image_features`` and ``get_text_features``.
        processor: Its processor (tokenizer + image processor).
        batch_size: Items per model call.
        bf16: Run under bf16 autocast.
    """

    def __init__(
        self, model: Any, processor: Any, *, batch_size: int = 32, bf16: bool = False
    ) -> None:
        missing = [
            name for name in ("get_image_features", "get_text_features") if not hasattr(model, name)
        ]
        if missing:
            raise InvalidArgumentError(
                f"expected an aligned image-text model (CLIP, SigLIP, ALIGN...) with "
                f"{' and '.join(missing)}; got {type(model).__name__}"
            )
        self.model, self.processor = model.eval(), processor
        self.batch_size, self.bf16 = batch_size, bf16

    @classmethod
    def load(cls, name_or_path: str, **kwargs: Any) -> ImageTextEncoder:
        """Load a hub id or folder (e.g. ``openai/clip-vit-base-patch32``)."""
        from transformers import AutoModel, AutoProcessor

        return cls(
            AutoModel.from_pretrained(name_or_path),
            AutoProcessor.from_pretrained(name_or_path),
            **kwargs,
        )

    def _run(self, items: Sequence[Any], encode: Any) -> np.ndarray:
        """Unit-length rows of ``encode`` over ``items`` (see :func:`run_batches`)."""
        vectors = run_batches(encode, items, self.model, batch_size=self.batch_size, bf16=self.bf16)
        return l2_normalize(vectors)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length text vectors (n, dim)."""

        def encode(chunk: list[str], device: torch.device) -> torch.Tensor:
            tokens = self.processor(text=chunk, padding=True, truncation=True, return_tensors="pt")
            keep = ("input_ids", "attention_mask")  # CLIP-like text towers take no segment ids
            tokens = {k: v.to(device) for k, v in tokens.items() if k in keep}
            return _features(self.model.get_text_features(**tokens))

        return self._run(texts, encode)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit-length image vectors (n, dim)."""

        def encode(chunk: list[Image.Image], device: torch.device) -> torch.Tensor:
            rgb = [image.convert("RGB") for image in chunk]
            pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"]
            return _features(self.model.get_image_features(pixel_values=pixels.to(device)))

        return self._run(images, encode)


def resolve_image_text_encoder(spec: Any) -> ImageTextEncoder | None:
    """``None``, an :class:`ImageTextEncoder`, or a hub id / folder to load as one."""
    if spec is None or isinstance(spec, ImageTextEncoder):
        return spec
    if isinstance(spec, str):
        return ImageTextEncoder.load(spec)
    raise InputTypeError(
        f"expected image_encoder as None, a hub id or folder, or an ImageTextEncoder; "
        f"got {type(spec).__name__}"
    )
