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


_DENSE_CELLS = 2_000_000  # above this many cost cells (16 MB), the assignment runs as a flow


def assign_roots(
    rows: dict[int, tuple[np.ndarray, np.ndarray]],
    target_parents: Sequence[int],
    *,
    reuse_penalty: float = 1.0,
    slot: int = -1,
) -> dict[int, tuple[int, float]]:
    """Jointly choose a target for each source root (or each child of one source category).

    Each source root takes one of its candidates whose parent is ``slot`` (the k-th root sent
    to the same target pays ``k * reuse_penalty`` more) or keeps its best other candidate,
    minimising the summed ``-log`` probabilities. Small problems are solved as one dense
    assignment (each target copied once per root); large ones (a family of thousands of
    siblings) as the same problem written as a min-cost flow, whose memory grows with the
    candidates kept per row, not with the square of the family.

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
    problem = _Problem.build(rows, target_parents, slot)
    width = len(problem.targets) * len(problem.roots) + len(problem.roots)
    if len(problem.roots) * width <= _DENSE_CELLS:
        chosen = problem.solve_dense(reuse_penalty)
    else:
        chosen = problem.solve_flow(reuse_penalty)
    picked = {}
    for r, g in chosen.items():
        cands, probs = rows[r]
        picked[r] = (g, float(probs[list(cands.tolist()).index(g)]))
    return picked


def outbid_rows(
    picked: dict[int, tuple[int, float]], rows: dict[int, tuple[np.ndarray, np.ndarray]]
) -> set[int]:
    """The rows of an assignment given a target that another row, given something else,
    scores higher: the joint assignment swapped them for a better total (a sibling sent to
    another's target), which a reader sees as a permutation of siblings.

    Example:
        >>> rows = {0: (np.array([5, 6]), np.array([0.2, 0.1])), 1: (np.array([5, 7]), np.array([0.3, 0.1]))}
        >>> sorted(outbid_rows({0: (5, 0.2), 1: (7, 0.1)}, rows))  # 1 scores 5 higher than 0
        [0]
    """
    def prob(r: int, g: int) -> float:
        cands, probs = rows[r]
        hits = np.nonzero(cands == g)[0]
        return float(probs[hits].max()) if len(hits) else 0.0

    return {
        r
        for r, (g, _) in picked.items()
        if any(picked[o][0] != g and prob(o, g) > prob(r, g) for o in picked if o != r)
    }


class _Problem:
    """:func:`assign_roots`' problem: each root's costs on the slot's targets and its outlet."""

    def __init__(
        self,
        roots: list[int],
        targets: list[int],
        options: list[dict[int, float]],
        outlets: list[tuple[int, float] | None],
    ) -> None:
        self.roots, self.targets, self.options, self.outlets = roots, targets, options, outlets

    @classmethod
    def build(
        cls, rows: dict[int, tuple[np.ndarray, np.ndarray]], target_parents: Sequence[int], slot: int
    ) -> _Problem:
        roots = sorted(rows)
        options: list[dict[int, float]] = []
        outlets: list[tuple[int, float] | None] = []
        for r in roots:
            cands, probs = rows[r]
            logp = np.log(np.maximum(probs, 1e-12))
            mine: dict[int, float] = {}
            for g, lp in zip(cands.tolist(), logp.tolist(), strict=True):
                if target_parents[g] == slot:
                    mine[int(g)] = -lp  # a repeated candidate: its last score, as before
            options.append(mine)
            deep = [j for j, g in enumerate(cands.tolist()) if target_parents[g] != slot]
            if deep:
                j = max(deep, key=lambda k: probs[k])
                outlets.append((int(cands[j]), float(-logp[j])))
            else:
                outlets.append(None)
        targets = sorted({g for mine in options for g in mine})
        return cls(roots, targets, options, outlets)

    def solve_dense(self, penalty: float) -> dict[int, int]:
        """One assignment over (roots) x (each target copied once per root, then outlets)."""
        from scipy.optimize import linear_sum_assignment

        copies, column = len(self.roots), {g: j for j, g in enumerate(self.targets)}
        width = len(self.targets) * copies + len(self.roots)
        cost = np.full((len(self.roots), width), 1e6)
        for i, mine in enumerate(self.options):
            for g, c in mine.items():
                col = column[g] * copies
                cost[i, col : col + copies] = c + penalty * np.arange(copies)
            if self.outlets[i] is not None:
                cost[i, len(self.targets) * copies + i] = self.outlets[i][1]
        chosen = {}
        for i, col in zip(*linear_sum_assignment(cost), strict=True):
            if cost[i, col] >= 1e6:
                continue
            outlet = self.outlets[i]
            g = self.targets[col // copies] if col < len(self.targets) * copies else outlet[0]
            chosen[self.roots[i]] = g
        return chosen

    def solve_flow(self, penalty: float, scale: float = 1e6) -> dict[int, int]:
        """The same problem as a min-cost flow: root -> target (its cost) -> sink (the k-th
        unit of a target costing ``k * penalty``), or root -> sink through its outlet.
        Costs are rounded to ``1 / scale`` (network simplex needs integers)."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        users: dict[int, int] = dict.fromkeys(self.targets, 0)
        placed = 0
        for i, mine in enumerate(self.options):
            if not mine and self.outlets[i] is None:
                continue  # nothing to choose: left out, as in the dense assignment
            placed += 1
            graph.add_node(("root", i), demand=-1)
            for g, c in mine.items():
                graph.add_edge(("root", i), ("target", g), capacity=1, weight=round(c * scale))
                users[g] += 1
            if self.outlets[i] is not None:
                cost = round(self.outlets[i][1] * scale)
                graph.add_edge(("root", i), "sink", capacity=1, weight=cost)
        graph.add_node("sink", demand=placed)
        for g, count in users.items():
            for k in range(count):  # never more units than roots that can use the target
                graph.add_edge(("target", g), "sink", capacity=1, weight=round(k * penalty * scale))
        if not placed:
            return {}
        _, flow = nx.network_simplex(graph)
        chosen = {}
        for i in range(len(self.options)):
            out = flow.get(("root", i))
            if out is None:
                continue
            used = [v for v, keys in out.items() if any(keys.values())]
            g = self.outlets[i][0] if used == ["sink"] else used[0][1]
            chosen[self.roots[i]] = g
        return chosen
