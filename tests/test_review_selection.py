"""``suggest``'s cold start: k-means medoids cover the embedding space before anything is reviewed."""

from __future__ import annotations

import numpy as np

from multimodal_cat.review import suggest
from multimodal_cat.review.selection import medoids


def _blobs(sizes=(30, 20, 10), dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[: len(sizes)] * 5
    vectors = np.concatenate([c + 0.1 * rng.normal(size=(s, dim)) for c, s in zip(centres, sizes, strict=True)])
    blob = np.repeat(np.arange(len(sizes)), sizes)
    return vectors, blob


def test_medoids_pick_one_central_row_per_cluster_largest_first():
    vectors, blob = _blobs()
    picks = medoids(vectors, 3)
    assert blob[picks].tolist() == [0, 1, 2]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for pick in picks:  # central: closer to its blob's mean direction than most of the blob
        members = np.flatnonzero(blob == blob[pick])
        centre = unit[members].mean(axis=0)
        assert unit[pick] @ centre >= np.median(unit[members] @ centre)
    assert medoids(vectors, 0).tolist() == []
    assert sorted(medoids(vectors[:4], 10).tolist()) == [0, 1, 2, 3]


def test_cold_start_covers_the_space_where_uncertainty_would_not():
    vectors, blob = _blobs()
    proba = np.full((len(vectors), 3), 0.01)
    proba[np.arange(len(vectors)), blob] = 0.98
    proba[:30] = [0.34, 0.33, 0.33]  # the big blob is all uncertain
    plain = suggest(proba, vectors, 3, pool_factor=1)
    cold = suggest(proba, vectors, 3, pool_factor=1, cold_start=True)
    assert set(blob[cold].tolist()) == {0, 1, 2}
    assert set(blob[plain].tolist()) == {0}  # uncertainty alone stays in the big blob
    reviewed = np.zeros(len(vectors), dtype=bool)
    reviewed[cold] = True  # once something is reviewed, the cold start no longer applies
    later = suggest(proba, vectors, 3, exclude=reviewed, cold_start=True)
    assert not set(later.tolist()) & set(cold.tolist())
    assert later.tolist() == suggest(proba, vectors, 3, exclude=reviewed).tolist()
