"""Deterministic little encoders for the catalog tests: word hashing for text, a colour
histogram for images, so near-identical inputs get near-identical vectors."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
from PIL import Image


class WordsEncoder:
    """Text -> counts of hashed words (64-d)."""

    dim = 64

    def __init__(self, name: str = "words") -> None:
        self.key = f"test-{name}"
        self.name = name

    def encode(self, texts, batch_size=32, normalize=False, bf16=False, **_):
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out


class ColourEncoder:
    """Image -> 4x4x4 colour histogram of an 8x8 thumbnail (64-d)."""

    dim = 64
    key = "test-colours"
    name = "colours"

    def encode(self, images, batch_size=32, normalize=False, bf16=False, **_):
        out = np.zeros((len(images), self.dim), np.float32)
        for row, image in enumerate(images):
            pixels = np.asarray(image.convert("RGB").resize((8, 8))).reshape(-1, 3) // 64
            for r, g, b in pixels:
                out[row, r * 16 + g * 4 + b] += 1.0
        return out


def swatch(colour: tuple[int, int, int], size: int = 40, stripe: int | None = None) -> Image.Image:
    """A plain colour image, optionally with a stripe of another colour (a different photo)."""
    image = Image.new("RGB", (size, size), colour)
    if stripe is not None:
        for x in range(size):
            for y in range(stripe, stripe + size // 3):
                image.putpixel((x, y), (255 - colour[0], 255 - colour[1], 255 - colour[2]))
    return image


def copy_of(image: Image.Image, crop: float = 0.15) -> Image.Image:
    """Centre-cropped by ``crop``, halved, saved at JPEG quality 30 (the benchmark's copy)."""
    w, h = image.size
    dx, dy = int(w * crop / 2), int(h * crop / 2)
    small = image.crop((dx, dy, w - dx, h - dy)).resize((w // 2, h // 2))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=30)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
