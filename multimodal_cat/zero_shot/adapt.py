"""Adaptation to a feed with no labels: smooth each product's probabilities over its neighbours.

Products of one feed come in families (a seller's 40 car mats, a brand's 30 tops): with
``adapt`` on, each product's category probabilities are mixed with those of its ``k`` nearest
products in the same batch (cosine of their vectors), iterated as label propagation:

    q <- (1 - alpha) p + alpha mean_{j in kNN(i)} q_j

No label is read; the feed's own predictions vote. It needs a batch of more than ``k``
products, and helps most on a large feed (measured in ``benchmarks/zero_shot_general.py``).

Example:
    >>> vectors = np.eye(3, dtype=np.float32)[[0, 0, 0, 1]]
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.1, 0.9]], dtype=np.float32)
    >>> smooth_over_neighbours(probs, vectors, k=2, alpha=0.5).argmax(1).tolist()
    [0, 0, 0, 1]
"""

from __future__ import annotations

import numpy as np

from multimodal_cat.errors import InvalidArgumentError

DEFAULT_K = 20
DEFAULT_ALPHA = 0.5
_ITERATIONS = 10
_BLOCK = 2048


def nearest_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each row's ``k`` most similar other rows (cosine of unit vectors)."""
    n = len(vectors)
    k = min(k, n - 1)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _BLOCK):
        sims = vectors[start : start + _BLOCK] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf
        out[start : start + _BLOCK] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def smooth_over_neighbours(
    probs: np.ndarray, vectors: np.ndarray, *, k: int = DEFAULT_K, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """Probabilities (rows sum to 1) propagated over the kNN graph of ``vectors``.

    Returns ``probs`` unchanged when the batch holds ``k`` products or fewer.
    """
    if not 0.0 <= alpha < 1.0:
        raise InvalidArgumentError(f"expected alpha in [0, 1); got {alpha}")
    if len(probs) <= k or alpha == 0.0:
        return probs
    neighbours = nearest_neighbours(np.asarray(vectors, dtype=np.float32), k)
    q = probs.copy()
    for _ in range(_ITERATIONS):
        q = (1.0 - alpha) * probs + alpha * q[neighbours].mean(axis=1)
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)
