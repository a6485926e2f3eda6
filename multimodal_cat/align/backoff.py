"""Choosing one target among scored candidates: the specific best, or an ancestor when unsure.

The re-ranker gives each candidate a probability. A target's *mass* is the summed probability
of the candidates in its subtree (itself included): the probability that the right answer
lies somewhere below it, hence the confidence of mapping to it. The rule:

1. the best candidate is kept when its own probability reaches ``threshold``, or when it is
   clearly ahead of its competitors (``ahead`` times the best candidate outside its own
   ancestor line);
2. otherwise the deepest target whose mass reaches ``threshold`` (an ancestor that holds the
   likely answers); never a target root for a non-root source while a non-root target fits
   (holds ``fit`` of the mass), unless the root itself is the best candidate;
3. when that target is not on the best candidate's own line (the mass came from many weak
   candidates elsewhere, such as the children of the parent's target), the back-off goes
   instead to the deepest common ancestor of the best candidate and its strongest rival
   (the two named answers), if there is one (not a target root for a non-root source):
   a target whose own name matches is preferred over a parent-context match;
4. the confidence is the chosen target's mass (the best candidate's probability when kept).

Example:
    >>> import numpy as np
    >>> parents = [-1, 0, 0, 1, 1]  # root 0; 1 and 2 under it; 3 and 4 under 1
    >>> choice = choose(parents, np.array([3, 4, 2]), np.array([0.4, 0.35, 0.25]))
    >>> choice.position, round(choice.confidence, 2), choice.kind  # 3 and 4 share parent 1
    (1, 0.75, 'back-off')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Choice:
    """The chosen target position, its confidence and why (``best`` or ``back-off``)."""

    position: int
    confidence: float
    kind: str


def lineage(parents: Sequence[int], position: int) -> list[int]:
    """``position`` and its ancestors, self first."""
    out = []
    while position >= 0:
        out.append(position)
        position = parents[position]
    return out


def subtree_mass(parents: Sequence[int], cands: np.ndarray, probs: np.ndarray) -> dict[int, float]:
    """Target position -> summed probability of the candidates at or below it."""
    mass: dict[int, float] = {}
    for g, p in zip(cands.tolist(), probs.tolist(), strict=True):
        for a in lineage(parents, g):
            mass[a] = mass.get(a, 0.0) + p
    return mass


def choose(
    parents: Sequence[int],
    cands: np.ndarray,
    probs: np.ndarray,
    *,
    threshold: float | None = 0.5,
    ahead: float = 3.0,
    source_is_root: bool = False,
    fit: float = 0.1,
    candidates_only: bool = False,
) -> Choice:
    """Pick one of ``cands`` (target positions with probabilities ``probs``) or an ancestor.

    Args:
        parents: parent position of every target position (-1 for roots).
        cands: candidate target positions.
        probs: their probabilities (summing to 1).
        threshold: mass needed to stop; ``None`` always keeps the best candidate.
        ahead: the best candidate is kept when its probability is at least this many times
            that of the best candidate off its ancestor line.
        source_is_root: roots may map to target roots by back-off.
        fit: for a non-root source, a non-root target whose mass reaches this *fits*: the
            back-off then stops there rather than at a target root.
        candidates_only: back off only to a candidate (else to any ancestor of one).
    """
    top = int(np.argmax(probs))
    best, p_best = int(cands[top]), float(probs[top])
    if threshold is None or p_best >= threshold:
        return Choice(best, p_best, "best")
    line = set(lineage(parents, best))
    rival, rival_g = max(
        ((p, g) for g, p in zip(cands.tolist(), probs.tolist(), strict=True) if g not in line),
        default=(0.0, -1),
    )
    if p_best >= ahead * rival:
        return Choice(best, p_best, "best")
    mass = subtree_mass(parents, cands, probs)
    if candidates_only:
        mass = {g: mass[g] for g in cands.tolist()}
    ok = [g for g, m in mass.items() if m >= threshold]
    if not source_is_root and parents[best] >= 0:
        deep = [g for g in ok if parents[g] >= 0]
        fitting = max(
            (g for g in mass if parents[g] >= 0), key=lambda g: (mass[g], len(lineage(parents, g)))
        )
        ok = deep or ([fitting] if mass[fitting] >= fit else ok)  # a root only if nothing fits
    if not ok:
        return Choice(best, p_best, "best")
    depth = {g: len(lineage(parents, g)) for g in ok}
    chosen = max(ok, key=lambda g: (depth[g], mass[g]))
    if chosen not in line and rival_g >= 0:  # the mass lies off the best's line: see step 3
        rival_line = set(lineage(parents, rival_g))
        shared = [g for g in lineage(parents, best) if g in rival_line]
        if shared and (source_is_root or parents[shared[0]] >= 0):
            chosen = shared[0]
    if chosen == best:
        return Choice(best, p_best, "best")
    return Choice(chosen, min(1.0, mass[chosen]), "back-off")
