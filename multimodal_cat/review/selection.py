"""What to label next: uncertain, typical products, spread over categories and the embedding space.

Labelling the N products the model is least sure of wastes effort when they are N copies of
the same confusing listing, or N one-off oddities. :func:`suggest` scores each candidate by
uncertainty (1 - confidence of the best category) times typicality (how dense the embedding
space is around it: a label there teaches the model about many products), then picks greedily
so each new pick is also far (cosine) from every product already labelled or picked and from
over-represented predicted categories.

Before anyone has reviewed anything, a model's uncertainty is a poor guide (a zero-shot
model is unsure almost everywhere): ``cold_start=True`` then picks the medoids of a k-means
clustering of the embedding space instead, so the first batch covers the catalogue (on
Flipkart's test titles this first batch of 400 beats 400 random ones by 3.4 points; see
``benchmarks/review_loop.py``).

Example:
    >>> import numpy as np
    >>> proba = np.array([[0.5, 0.5], [0.5, 0.5], [0.99, 0.01], [0.6, 0.4]])
    >>> vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> suggest(proba, vectors, 2).tolist()  # the two uncertain twins are not both picked
    [0, 3]
    >>> sorted(suggest(proba, vectors, 2, cold_start=True).tolist()) in ([0, 2], [0, 3], [1, 2], [1, 3])
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

POOL_FACTOR = 20  # picks are made among the POOL_FACTOR * n most promising candidates
DENSITY_POWER = 1.0  # weight of typicality against uncertainty (chosen on Flipkart dev rows)
NEIGHBOURS = 20  # typicality = mean cosine similarity to this many nearest neighbours
DENSITY_SAMPLE = 5000  # ... among at most this many reference rows (seeded sample)
CHUNK = 1024  # rows per block of similarity products (bounds memory)
MEDOID_ITERATIONS = 100  # k-means iterations of the cold start
SCORE_BATCH = 256  # products per batch of probabilities (score_pool): bounds their memory


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - the best category's probability, per row."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"expected probabilities of shape (n, k); found {proba.shape}")
    return 1.0 - proba.max(axis=1)


@dataclass
class PoolScores:
    """What :func:`suggest` needs of each product of a pool, in memory linear in the pool
    (never a (products x categories) matrix).

    Attributes:
        confidence: ``(rows,)`` the best category's probability.
        predicted: ``(rows,)`` the best category's column.
        vectors: ``(rows, dim)`` product embeddings (any scale; compared by cosine).
    """

    confidence: np.ndarray
    predicted: np.ndarray
    vectors: np.ndarray


def score_pool(
    products: Iterable[Any],
    count: int,
    predict_proba: Callable[[list[Any]], np.ndarray],
    embed: Callable[[list[Any]], np.ndarray],
    *,
    batch_size: int = SCORE_BATCH,
    progress: bool = False,
) -> PoolScores:
    """Score a pool ``batch_size`` products at a time, keeping only each product's best
    category and its embedding: memory is one batch of probabilities plus the pool's vectors.

    Args:
        products: The pool, streamed (``count`` of them).
        count: How many ``products`` yields (the arrays are allocated once).
        predict_proba: Products -> ``(batch, categories)`` probabilities.
        embed: Products -> ``(batch, dim)`` embeddings.
        batch_size: Products per call of ``predict_proba`` and ``embed``.
        progress: Show a progress bar on stderr.

    Example:
        >>> scores = score_pool(["a", "b", "c"], 3, lambda b: np.array([[0.9, 0.1]] * len(b)),
        ...                     lambda b: np.ones((len(b), 2)), batch_size=2)
        >>> scores.confidence.tolist(), scores.predicted.tolist(), scores.vectors.shape
        ([0.8999999761581421, 0.8999999761581421, 0.8999999761581421], [0, 0, 0], (3, 2))
    """
    confidence = np.zeros(count, dtype=np.float32)
    predicted = np.zeros(count, dtype=np.int64)
    vectors: np.ndarray | None = None
    done = 0
    bar = tqdm(total=count, disable=not progress, unit="product", desc="scoring the pool")
    for batch in _batches(products, batch_size):
        proba = np.asarray(predict_proba(batch))
        block = np.asarray(embed(batch), dtype=np.float32)
        if vectors is None:
            vectors = np.zeros((count, block.shape[1]), dtype=np.float32)
        end = done + len(batch)
        if end > count or proba.shape[0] != len(batch) or block.shape[0] != len(batch):
            raise ValueError(
                f"expected {count} products and one row of scores and embedding each; "
                f"found {end}+ products, {proba.shape[0]} and {block.shape[0]} rows in a batch"
            )
        confidence[done:end], predicted[done:end] = proba.max(axis=1), proba.argmax(axis=1)
        vectors[done:end] = block
        done = end
        bar.update(len(batch))
    bar.close()
    if done != count:
        raise ValueError(f"expected {count} products; found {done}")
    return PoolScores(confidence, predicted, vectors if vectors is not None else np.zeros((0, 1)))


def predict_in_batches(
    predictor: Any, products: Sequence[Any], batch_size: int = SCORE_BATCH
) -> list[Any]:
    """``predictor.predict(products)``, ``batch_size`` products at a time, so that a
    predictor's (batch x categories) probabilities never span the whole list."""
    out: list[Any] = []
    for batch in _batches(products, batch_size):
        out.extend(predictor.predict(batch))
    return out


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def suggest(
    proba: np.ndarray,
    vectors: np.ndarray,
    n: int,
    *,
    exclude: Sequence[bool] | np.ndarray | None = None,
    pool_factor: int = POOL_FACTOR,
    density_power: float = DENSITY_POWER,
    cold_start: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Indices of the ``n`` rows whose labels would help most, best first.

    The same as :func:`suggest_scored` on ``PoolScores`` of ``proba`` (for a large pool,
    build those batch by batch with :func:`score_pool` instead of holding ``proba``).

    Args:
        proba: ``(rows, categories)`` predicted probabilities.
        vectors: ``(rows, dim)`` product embeddings (any scale; compared by cosine).
        n: How many to pick (fewer when fewer rows are eligible).
        exclude: Rows not to pick (already reviewed).
        pool_factor: Size of the candidate pool, as a multiple of ``n``.
        density_power: Exponent of typicality in the score (0: uncertainty alone).
        cold_start: When no row is excluded (nothing reviewed yet), ignore ``proba`` and pick
            the ``n`` k-means medoids of the embeddings (largest cluster first), so the first
            batch covers the embedding space.
        seed: Seed of the reference sample for typicality and of the k-means.

    Raises:
        ValueError: the arrays disagree in length or ``n`` is negative.
    """
    proba = np.asarray(proba, dtype=np.float64)
    uncertainty(proba)  # checks the shape
    scores = PoolScores(proba.max(axis=1), proba.argmax(axis=1), np.asarray(vectors, dtype=np.float64))
    return suggest_scored(
        scores, n, exclude=exclude, pool_factor=pool_factor, density_power=density_power,
        cold_start=cold_start, seed=seed,
    )


def suggest_scored(
    scores: PoolScores,
    n: int,
    *,
    exclude: Sequence[bool] | np.ndarray | None = None,
    pool_factor: int = POOL_FACTOR,
    density_power: float = DENSITY_POWER,
    cold_start: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """:func:`suggest` on a pool's :class:`PoolScores` (see :func:`score_pool`).

    Raises:
        ValueError: the arrays disagree in length or ``n`` is negative.
    """
    vectors, predicted = scores.vectors, np.asarray(scores.predicted, dtype=np.int64)
    if not len(scores.confidence) == len(predicted) == len(vectors):
        raise ValueError(
            f"expected one embedding per row of probabilities; found {len(vectors)} and "
            f"{len(scores.confidence)}"
        )
    if n < 0:
        raise ValueError(f"expected n >= 0; found {n}")
    unit = _unit(vectors)
    if cold_start and (exclude is None or not np.any(exclude)):
        return medoids(unit, n, seed=seed)
    score = 1.0 - np.asarray(scores.confidence, dtype=np.float64)
    if density_power:
        score = score * np.clip(typicality(unit, seed=seed), 1e-3, None) ** density_power
    eligible = np.ones(len(score), dtype=bool) if exclude is None else ~np.asarray(exclude, bool)
    candidates = np.flatnonzero(eligible)
    pool = candidates[np.argsort(-score[candidates], kind="stable")[: max(n * pool_factor, n)]]
    if not len(pool) or n == 0:
        return np.zeros(0, dtype=np.int64)
    done = np.flatnonzero(~eligible)
    distance = _nearest_distance(unit[pool], unit[done])
    crowding = np.ones(len(pool))  # 1 + (scaled) labelled rows in the same predicted category
    if len(done):
        counts = np.bincount(predicted[done], minlength=int(predicted.max()) + 1)
        crowding += counts[predicted[pool]] / max(1.0, len(done) / max(n, 1))
    picks = _greedy_spread(score[pool], unit[pool], predicted[pool], min(n, len(pool)), distance, crowding)
    return pool[picks]


def medoids(vectors: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Indices of the rows nearest (cosine) to the centres of a k-means clustering into ``n``
    clusters, one per cluster, largest cluster first (all rows when there are at most ``n``).

    Example:
        >>> import numpy as np
        >>> vectors = np.array([[1.0, 0.0], [0.9, 0.1], [1.0, 0.05], [0.0, 1.0]])
        >>> medoids(vectors, 2).tolist()
        [2, 3]
    """
    from sklearn.cluster import KMeans

    vectors = np.asarray(vectors)
    unit = _unit(vectors if vectors.dtype == np.float32 else vectors.astype(np.float64))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n >= len(unit):
        return np.arange(len(unit), dtype=np.int64)
    clusters = KMeans(n, n_init=1, max_iter=MEDOID_ITERATIONS, random_state=seed).fit(unit)
    order = np.argsort(-np.bincount(clusters.labels_, minlength=n), kind="stable")
    picks, taken = [], np.zeros(len(unit), dtype=bool)
    for cluster in order:
        members = np.flatnonzero((clusters.labels_ == cluster) & ~taken)
        if not len(members):  # an empty cluster: the nearest row not yet taken
            members = np.flatnonzero(~taken)
        best = members[int(np.argmax(unit[members] @ clusters.cluster_centers_[cluster]))]
        picks.append(best)
        taken[best] = True
    return np.array(picks, dtype=np.int64)


def typicality(unit: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Mean cosine similarity of each row to its nearest neighbours in a reference sample."""
    rng = np.random.default_rng(seed)
    reference = unit if len(unit) <= DENSITY_SAMPLE else unit[rng.choice(len(unit), DENSITY_SAMPLE, replace=False)]
    k = min(NEIGHBOURS, len(reference) - 1)
    if k < 1:
        return np.ones(len(unit))
    out = np.empty(len(unit))
    for start in range(0, len(unit), CHUNK):
        sims = unit[start : start + CHUNK] @ reference.T
        top = np.partition(sims, -(k + 1), axis=1)[:, -(k + 1) :]
        out[start : start + CHUNK] = (top.sum(axis=1) - top.max(axis=1)) / k  # drop the row itself
    return out


def _nearest_distance(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Cosine distance of each row to its nearest row of ``others`` (2 when there is none)."""
    distance = np.full(len(rows), 2.0)
    for start in range(0, len(others), CHUNK):
        sims = rows @ others[start : start + CHUNK].T
        distance = np.minimum(distance, 1.0 - sims.max(axis=1))
    return distance


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _greedy_spread(
    score: np.ndarray,
    unit: np.ndarray,
    predicted: np.ndarray,
    n: int,
    distance: np.ndarray,
    crowding: np.ndarray,
) -> np.ndarray:
    """Pick ``n`` positions maximising uncertainty x distance to the nearest labelled or picked
    row / crowding of the predicted category."""
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
