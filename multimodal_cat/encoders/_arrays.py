"""Small numpy-only helpers (kept apart so the cache does not import torch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np

from multimodal_cat.errors import InvalidArgumentError

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of ``items`` of length ``size`` (the last may be shorter)."""
    if size < 1:
        raise InvalidArgumentError(f"Expected batch_size >= 1; got {size}.")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
