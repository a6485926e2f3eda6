"""What to label next: uncertain products, spread over categories and over the embedding space.

Labelling the N products the model is least sure of wastes effort when they are N copies of
the same confusing listing. :func:`suggest` ranks by uncertainty (1 - confidence of the best
category), then picks greedily so each new pick is also far (cosine) from those already picked
and from an over-represented predicted category.

Example:
    >>> import numpy as np
    >>> proba = np.array([[0.5, 0.5], [0.5, 0.5], [0.99, 0.01], [0.6, 0.4]])
    >>> vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> suggest(proba, vectors, 2).tolist()  # the two uncertain twins are not both picked
    [0, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POOL_FACTOR = 5  # picks are made among the POOL_FACTOR * n most uncertain candidates


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - the best category's probability, per row."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"expected probabilities of shape (n, k); found {proba.shape}")
    return 1.0 - proba.max(axis=1)


def suggest(
    proba: np.ndarray,
    vectors: np.ndarray,
    n: int,
    *,
    exclude: Sequence[bool] | np.ndarray | None = None,
    pool_factor: int = POOL_FACTOR,
) -> np.ndarray:
    """Indices of the ``n`` rows whose labels would help most, best first.

    Args:
        proba: ``(rows, categories)`` predicted probabilities.
        vectors: ``(rows, dim)`` product embeddings (any scale; compared by cosine).
        n: How many to pick (fewer when fewer rows are eligible).
        exclude: Rows not to pick (already reviewed).
        pool_factor: Size of the uncertain pool, as a multiple of ``n``.

    Raises:
        ValueError: the arrays disagree in length or ``n`` is negative.
    """
    proba = np.asarray(proba, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(proba) != len(vectors):
        raise ValueError(
            f"expected one embedding per row of probabilities; found {len(vectors)} and {len(proba)}"
        )
    if n < 0:
        raise ValueError(f"expected n >= 0; found {n}")
    score = uncertainty(proba)
    eligible = np.ones(len(score), dtype=bool) if exclude is None else ~np.asarray(exclude, bool)
    candidates = np.flatnonzero(eligible)
    pool = candidates[np.argsort(-score[candidates], kind="stable")[: max(n * pool_factor, n)]]
    if not len(pool) or n == 0:
        return np.zeros(0, dtype=np.int64)
    unit = vectors[pool] / np.maximum(np.linalg.norm(vectors[pool], axis=1, keepdims=True), 1e-12)
    predicted = proba[pool].argmax(axis=1)
    return pool[_greedy_spread(score[pool], unit, predicted, min(n, len(pool)))]


def _greedy_spread(score: np.ndarray, unit: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """Pick ``n`` positions maximising uncertainty x distance to the picked x category share."""
    distance = np.full(len(score), 2.0)  # cosine distance to the nearest pick (2 = none yet)
    crowding = np.ones(len(score))  # 1 + picks already made in the row's predicted category
    taken = np.zeros(len(score), dtype=bool)
    picks = []
    for _ in range(n):
        value = np.where(taken, -np.inf, (score + 1e-6) * distance / crowding)
        best = int(np.argmax(value))
        picks.append(best)
        taken[best] = True
        crowding[predicted == predicted[best]] += 1
        distance = np.minimum(distance, 1.0 - unit @ unit[best])
    return np.array(picks, dtype=np.int64)
