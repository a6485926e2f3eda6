"""Alignment memory grows linearly with a sibling family (issue 22, item 3): the family
matcher and the joint sibling assignment never build a (family x family) array, and give the
same answers as the dense assignments they replace."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import multimodal_cat.align.structure as structure
from multimodal_cat.align.families import match_family
from multimodal_cat.align.structure import assign_roots

# A target tree: roots 0, 1, 2; 3..8 under 0; 9..14 under 1.
PARENTS = [-1, -1, -1] + [0] * 6 + [1] * 6


def _dense_match_family(scores: np.ndarray, none_score: float) -> np.ndarray:
    """The former formulation: one "none" column per row, a (rows x rows) block."""
    rows, cols = scores.shape
    out = np.full(rows, -1)
    cost = np.hstack([-scores, np.full((rows, rows), -none_score)])
    for i, j in zip(*linear_sum_assignment(cost), strict=True):
        if j < cols:
            out[i] = j
    return out


def _peak_mib(work) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_match_family_equals_the_dense_assignment():
    rng = np.random.default_rng(0)
    for _ in range(300):
        scores = rng.normal(size=tuple(rng.integers(1, 12, size=2)))
        none = float(rng.choice([-3.0, -1.0, 0.0, 0.5]))
        picked, probs = match_family(scores, none_score=none)
        assert picked.tolist() == _dense_match_family(scores, none).tolist()
        assert ((probs > 0) == (picked >= 0)).all()


def test_match_family_memory_is_linear_in_the_family():
    scores = np.random.default_rng(1).normal(size=(6000, 3))  # dense "none" block: 288 MB
    peak = _peak_mib(lambda: match_family(scores, none_score=-1.0))
    assert peak < 20


def _random_rows(rng, n: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rows = {}
    for r in range(n):
        k = int(rng.integers(1, 6))
        rows[3 * r + 1] = (rng.choice(15, size=k, replace=False), rng.dirichlet(np.ones(k)))
    return rows


@pytest.mark.parametrize("penalty", [0.0, 0.5, 1.0, 2.0])
def test_sibling_assignment_as_a_flow_equals_the_dense_one(monkeypatch, penalty):
    rng = np.random.default_rng(int(penalty * 10))
    problems = [
        (_random_rows(rng, int(rng.integers(1, 30))), int(rng.choice([-1, 0, 1])))
        for _ in range(40)
    ]
    dense = [
        assign_roots(rows, PARENTS, reuse_penalty=penalty, slot=slot) for rows, slot in problems
    ]
    monkeypatch.setattr(structure, "_DENSE_CELLS", 0)  # every problem through the flow
    flow = [
        assign_roots(rows, PARENTS, reuse_penalty=penalty, slot=slot) for rows, slot in problems
    ]
    assert flow == dense


def test_large_sibling_assignment_memory_is_linear():
    rng = np.random.default_rng(2)
    rows = {}
    for r in range(2000):  # 2,000 siblings contesting 3 children: a dense cost of 128 MB
        cands = np.array([3, 4, 5, 9])
        rows[r] = (cands, rng.dirichlet(np.ones(4)))
    result: dict = {}
    peak = _peak_mib(lambda: result.update(assign_roots(rows, PARENTS, slot=0)))
    assert peak < 50
    assert len(result) == 2000
    used = [g for g, _ in result.values()]
    # the k-th sibling sent to one child pays k: only a handful share each child
    assert all(used.count(g) < 30 for g in (3, 4, 5)) and used.count(9) > 1900
