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
TRIM_EVERY_BATCHES = 20  # score_pool hands freed memory back to the OS this often


def uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - the best category's probability, per row."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"expected probabilities of shape (n, k); found {proba.shape}")
    return 1.0 - proba.max(axis=1)


@dataclass
class PoolScores:
    """What :func:`suggest_scored` needs of each product of a pool: a few numbers per product,
    never a (products x categories) matrix nor the pool's embeddings.

    Attributes:
        confidence: ``(rows,)`` the best category's probability.
        predicted: ``(rows,)`` the best category's column.
        typicality: ``(rows,)`` see :func:`typicality`.
    """

    confidence: np.ndarray
    predicted: np.ndarray
    typicality: np.ndarray


def score_pool(
    pool: Callable[[], Iterable[Any]],
    count: int,
    predict_proba: Callable[[list[Any]], np.ndarray],
    embed: Callable[[list[Any]], np.ndarray],
    *,
    batch_size: int = SCORE_BATCH,
    seed: int = 0,
    progress: bool = False,
) -> PoolScores:
    """Score a pool streamed ``batch_size`` products at a time, in memory bounded by a batch.

    Two passes over ``pool()``: the first keeps each product's best category and the
    embeddings of the typicality reference sample (the rows :func:`typicality` samples); the
    second embeds again (an embedding cache makes it cheap) and measures each product's
    typicality against that sample. The answer equals :func:`typicality` and the argmax of
    the whole probability matrix.

    Args:
        pool: Returns a fresh iterable of the pool's ``count`` products at each call.
        count: How many products ``pool()`` yields.
        predict_proba: Products -> ``(batch, categories)`` probabilities.
        embed: Products -> ``(batch, dim)`` embeddings (any scale).
        batch_size: Products per call of ``predict_proba`` and ``embed``.
        seed: Seed of the reference sample (as :func:`typicality`'s).
        progress: Show progress bars on stderr.

    Example:
        >>> vectors = np.eye(3)
        >>> scores = score_pool(lambda: range(3), 3, lambda b: np.array([[0.9, 0.1]] * len(b)),
        ...                     lambda b: vectors[b], batch_size=2)
        >>> scores.confidence.tolist(), scores.predicted.tolist(), scores.typicality.tolist()
        ([0.9, 0.9, 0.9], [0, 0, 0], [0.0, 0.0, 0.0])
    """
    from multimodal_cat.feeds.memory import release_freed_memory  # lazy: feeds imports review

    confidence, predicted = np.zeros(count), np.zeros(count, dtype=np.int64)
    sample = _reference_rows(count, seed)
    wanted = dict.fromkeys(sample.tolist())
    done = 0
    batches = _batches(_counted(pool(), count, progress, "scoring the pool"), batch_size)
    for number, batch in enumerate(batches, start=1):
        if number % TRIM_EVERY_BATCHES == 0:
            release_freed_memory()  # the freed (batch x categories) matrices go back to the OS
        proba = np.asarray(predict_proba(batch), dtype=np.float64)
        if proba.shape[0] != len(batch):
            raise ValueError(f"expected {len(batch)} rows of probabilities; found {proba.shape[0]}")
        end = done + len(batch)
        confidence[done:end], predicted[done:end] = proba.max(axis=1), proba.argmax(axis=1)
        unit = _unit(np.asarray(embed(batch), dtype=np.float64))
        for row in range(done, end):
            if row in wanted:
                wanted[row] = unit[row - done].copy()  # a view would keep the whole batch alive
        done = end
    reference = np.array([wanted[row] for row in sample.tolist()]) if count else np.zeros((0, 1))
    typical = np.ones(count)
    k = min(NEIGHBOURS, len(reference) - 1)
    if k >= 1:
        done = 0
        for batch in _batches(_counted(pool(), count, progress, "typicality"), batch_size):
            rows = _unit(np.asarray(embed(batch), dtype=np.float64))
            typical[done : done + len(batch)] = _density(rows, reference, k)
            done += len(batch)
    return PoolScores(confidence, predicted, typical)


def gather_vectors(
    pool: Iterable[Any], positions: Sequence[int] | np.ndarray, embed: Callable[[list[Any]], np.ndarray],
    *, batch_size: int = SCORE_BATCH,
) -> np.ndarray:
    """Unit embeddings of the pool's products at ``positions`` (in that order), in one pass.

    Example:
        >>> gather_vectors(["a", "bb", "ccc"], [2, 0], lambda b: np.array([[len(t), 0.0] for t in b])).tolist()
        [[1.0, 0.0], [1.0, 0.0]]
    """
    wanted = set(np.asarray(positions, dtype=np.int64).tolist())
    found: dict[int, np.ndarray] = {}
    chosen = ((i, p) for i, p in enumerate(pool) if i in wanted)
    for batch in _batches(chosen, batch_size):
        unit = _unit(np.asarray(embed([p for _, p in batch]), dtype=np.float64))
        found.update((i, unit[j]) for j, (i, _) in enumerate(batch))
    if not found:
        return np.zeros((len(wanted), 1))
    return np.array([found[int(i)] for i in positions])


def _counted(items: Iterable[Any], count: int, progress: bool, what: str) -> Iterator[Any]:
    """``items``, checked to be ``count`` of them, with a progress bar."""
    seen = 0
    with tqdm(total=count, disable=not progress, unit="product", desc=what) as bar:
        for item in items:
            seen += 1
            if seen > count:
                break
            yield item
            bar.update(1)
    if seen != count:
        raise ValueError(f"expected {count:,} products in the pool; found {'more' if seen > count else seen}")


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

    For a large pool, :func:`score_pool` and :func:`suggest_scored` give the same picks
    without holding ``proba`` or ``vectors`` whole.

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
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(proba) != len(vectors):
        raise ValueError(
            f"expected one embedding per row of probabilities; found {len(vectors)} and {len(proba)}"
        )
    if n < 0:
        raise ValueError(f"expected n >= 0; found {n}")
    unit = _unit(vectors)
    if cold_start and (exclude is None or not np.any(exclude)):
        return medoids(unit, n, seed=seed)
    uncertainty(proba)  # checks the shape
    typical = typicality(unit, seed=seed) if density_power else np.ones(len(unit))
    scores = PoolScores(proba.max(axis=1), proba.argmax(axis=1), typical)
    return suggest_scored(
        scores, lambda rows: unit[rows], n, exclude=exclude, pool_factor=pool_factor,
        density_power=density_power,
    )  # fmt: skip


def suggest_scored(
    scores: PoolScores,
    vectors_of: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    exclude: Sequence[bool] | np.ndarray | None = None,
    pool_factor: int = POOL_FACTOR,
    density_power: float = DENSITY_POWER,
) -> np.ndarray:
    """:func:`suggest`'s picks from a pool's :class:`PoolScores`; ``vectors_of(rows)`` gives
    the unit embeddings of the few rows it needs (the candidate pool and the excluded rows).

    Raises:
        ValueError: ``n`` is negative or the scores disagree in length.
    """
    if n < 0:
        raise ValueError(f"expected n >= 0; found {n}")
    predicted = np.asarray(scores.predicted, dtype=np.int64)
    if not len(scores.confidence) == len(predicted) == len(scores.typicality):
        raise ValueError("expected one confidence, prediction and typicality per row")
    score = 1.0 - np.asarray(scores.confidence, dtype=np.float64)
    if density_power:
        score = score * np.clip(scores.typicality, 1e-3, None) ** density_power
    eligible = np.ones(len(score), dtype=bool) if exclude is None else ~np.asarray(exclude, bool)
    candidates = np.flatnonzero(eligible)
    pool = candidates[np.argsort(-score[candidates], kind="stable")[: max(n * pool_factor, n)]]
    if not len(pool) or n == 0:
        return np.zeros(0, dtype=np.int64)
    done = np.flatnonzero(~eligible)
    unit_pool = vectors_of(pool)
    distance = _nearest_distance(unit_pool, vectors_of(done) if len(done) else unit_pool[:0])
    crowding = np.ones(len(pool))  # 1 + (scaled) labelled rows in the same predicted category
    if len(done):
        counts = np.bincount(predicted[done], minlength=int(predicted.max()) + 1)
        crowding += counts[predicted[pool]] / max(1.0, len(done) / max(n, 1))
    picks = _greedy_spread(score[pool], unit_pool, predicted[pool], min(n, len(pool)), distance, crowding)
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

    unit = _unit(np.asarray(vectors, dtype=np.float64))
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
    reference = unit[_reference_rows(len(unit), seed)]
    k = min(NEIGHBOURS, len(reference) - 1)
    if k < 1:
        return np.ones(len(unit))
    out = np.empty(len(unit))
    for start in range(0, len(unit), CHUNK):
        out[start : start + CHUNK] = _density(unit[start : start + CHUNK], reference, k)
    return out


def _reference_rows(count: int, seed: int) -> np.ndarray:
    """The rows :func:`typicality` compares with: all, or a seeded sample of ``DENSITY_SAMPLE``."""
    if count <= DENSITY_SAMPLE:
        return np.arange(count)
    return np.random.default_rng(seed).choice(count, DENSITY_SAMPLE, replace=False)


def _density(rows: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row's ``k`` highest cosines with ``reference``, its own (the highest) left out."""
    sims = rows @ reference.T
    top = np.partition(sims, -(k + 1), axis=1)[:, -(k + 1) :]
    return (top.sum(axis=1) - top.max(axis=1)) / k


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
