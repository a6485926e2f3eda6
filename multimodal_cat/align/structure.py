"""Structure as evidence: what a category's descendants say, and the roots aligned jointly.

Each source category *votes* for one target: its longest shared path prefix when there is
one (trees that share wording), else its nearest target by full-path embedding. A candidate
``g`` of an internal source category ``s`` is supported by the share of ``s``'s descendants
whose vote lies in ``g``'s subtree: a root whose children land in one target branch belongs
there, whatever its own name says (a translated or reworded root).

The roots are then aligned as a whole: a small assignment problem between source roots and
target roots (each target root taken once at no cost, again at ``reuse_penalty`` each time),
where a source root may also keep its best non-root candidate, so that one wrongly matched
root cannot pull a whole subtree into the wrong branch.

Example:
    >>> import numpy as np
    >>> support = agreement([-1, 0, 0], {0: [1, 2]}, [-1, 1, 1], 0, np.array([0, 1, 2]))
    >>> support.round(2).tolist()  # both children vote for target 1, which is under root 0
    [1.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from multimodal_cat.align.embeddings import TreeView

_FLOOR = 1e-3  # support floor, so that no candidate is ruled out by its descendants alone


def votes(
    source: TreeView, target: TreeView, lexical: Sequence[int], margin: float = 0.1
) -> list[int]:
    """One target position per source position (-1: none): the lexical prefix, else the
    nearest full-path embedding when it stands ``margin`` above the average target."""
    out = list(lexical)
    if source.path_emb is None or source.path_emb.shape[1] <= 1 or not len(target):
        return out
    for start in range(0, len(source), 2048):
        sims = source.path_emb[start : start + 2048] @ target.path_emb.T
        best = sims.argmax(axis=1)
        clear = sims.max(axis=1) - sims.mean(axis=1) > margin
        for row, (g, ok) in enumerate(zip(best.tolist(), clear.tolist(), strict=True), start):
            if out[row] < 0 and ok:
                out[row] = int(g)
    return out


def descendants(source: TreeView) -> dict[int, list[int]]:
    """Internal source position -> all its descendant positions."""
    out: dict[int, list[int]] = {}
    for s in sorted(range(len(source)), key=lambda p: -source.depths[p]):
        if source.children[s]:
            out[s] = [d for c in source.children[s] for d in (c, *out.get(c, ()))]
    return out


def agreement(
    target_parents: Sequence[int],
    below: dict[int, list[int]],
    vote: Sequence[int],
    s: int,
    cands: np.ndarray,
) -> np.ndarray:
    """Share of ``s``'s descendants whose vote lies at or below each candidate (0 for a leaf)."""
    members = below.get(s, [])
    counts: Counter[int] = Counter()
    for d in members:
        g = vote[d]
        while g >= 0:
            counts[g] += 1
            g = target_parents[g]
    total = max(1, sum(1 for d in members if vote[d] >= 0))
    return np.array([counts.get(int(g), 0) / total for g in cands], dtype=np.float64)


def with_support(probs: np.ndarray, support: np.ndarray, weight: float) -> np.ndarray:
    """``probs`` reweighted by ``(support + floor) ** weight`` and renormalised."""
    if weight == 0 or not support.any():
        return probs
    scores = np.log(np.maximum(probs, 1e-12)) + weight * np.log(support + _FLOOR)
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


def assign_roots(
    rows: dict[int, tuple[np.ndarray, np.ndarray]],
    target_parents: Sequence[int],
    *,
    reuse_penalty: float = 1.0,
    slot: int = -1,
) -> dict[int, tuple[int, float]]:
    """Jointly choose a target for each source root (or each child of one source category).

    Args:
        rows: source root -> (candidate target positions, their probabilities), the
            probabilities already combining name evidence and descendants' support.
        target_parents: parent of each target position (-1: a target root).
        reuse_penalty: log-score cost of each further source root sent to the same target
            root (0: every root decides alone).
        slot: the targets shared out are those whose parent is ``slot`` (-1: the target
            roots; a target position: its children, for the children of the source category
            mapped there).

    Returns:
        source root -> (target position, its probability in the row).
    """
    from scipy.optimize import linear_sum_assignment

    roots = sorted(rows)
    t_roots = sorted({int(g) for c, _ in rows.values() for g in c if target_parents[g] == slot})
    copies = len(roots)
    width = len(t_roots) * copies + len(roots)
    cost = np.full((len(roots), width), 1e6)
    outlet: dict[int, int] = {}
    for i, r in enumerate(roots):
        cands, probs = rows[r]
        logp = np.log(np.maximum(probs, 1e-12))
        for g, lp in zip(cands.tolist(), logp.tolist(), strict=True):
            if target_parents[g] == slot:
                col = t_roots.index(g) * copies
                cost[i, col : col + copies] = -lp + reuse_penalty * np.arange(copies)
        deep = [j for j, g in enumerate(cands.tolist()) if target_parents[g] != slot]
        if deep:
            j = max(deep, key=lambda k: probs[k])
            outlet[i] = int(cands[j])
            cost[i, len(t_roots) * copies + i] = -logp[j]
    picked = {}
    for i, col in zip(*linear_sum_assignment(cost), strict=True):
        if cost[i, col] >= 1e6:
            continue
        g = t_roots[col // copies] if col < len(t_roots) * copies else outlet[i]
        cands, probs = rows[roots[i]]
        picked[roots[i]] = (g, float(probs[list(cands.tolist()).index(g)]))
    return picked
