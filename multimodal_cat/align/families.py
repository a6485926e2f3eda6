"""Sibling families matched as a whole, with the trees' shape as evidence (translated trees).

When two trees share little wording (e.g. one tree and its translation), the names alone
are weak evidence: a multilingual encoder finds the right name among a parent's children only
about 60% of the time. The shape of the trees is strong evidence there: a translated tree
keeps its branches. So the children of a source category mapped to target ``a`` are matched
to the children of ``a`` as one assignment problem (each target child taken at most once),
scoring each pair ``(s, g)`` with

- the names' cosine, ``text_weight`` per spread of the cosine between random pairs;
- the sizes of their subtrees: ``-size_weight * min(size_cap, |log(1 + |sub(s)|) -
  log(1 + |sub(g)|)|)``: capped, so that where the trees' shapes differ (trees that are not
  translations of each other) a clear name match still wins;
- the children's agreement: ``support_weight`` times the share of ``s``'s descendants whose
  nearest full path inside ``a``'s subtree lies under ``g`` (bottom-up evidence).

A source child whose best pair scores below ``none_score`` stays unmatched (it goes through
the ordinary candidates and back-off). A matched child's confidence is the pair's softmax
probability in its row (the source child's alternatives) times that in its column (the
target child's other claimants), at ``temperature``, times its parent's confidence: a child
is right only when its parent is.

Before that, :meth:`FamilyMatcher.refined` learns how the two languages' name embeddings
differ (self-learning, as in bilingual lexicon induction): it matches the whole tree, fits an
orthogonal map (Procrustes) from the source names to their matched target names on the most
confident half of the matches (when they are at least as many as the embedding's dimensions,
so that the map is determined), and repeats with the mapped names. The weights and the two
rounds were chosen on the dev pair pl-PL -> en-US (see benchmarks/alignment_general.py).

Example:
    >>> import numpy as np
    >>> scores = np.array([[0.2, 0.1], [0.3, 0.0]])  # both prefer target 0; child 1 more so
    >>> [int(j) for j in match_family(scores, none_score=-1.0)[0]]
    [1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multimodal_cat.align.backoff import Choice, lineage
from multimodal_cat.align.candidates import cosine_moments
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.align.result import ReviewItem, review_item
from multimodal_cat.align.structure import descendants


def softmax(scores: np.ndarray, axis: int, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``scores / temperature`` along ``axis``."""
    out = np.exp((scores - scores.max(axis=axis, keepdims=True)) / temperature)
    return out / out.sum(axis=axis, keepdims=True)


def match_family(
    scores: np.ndarray, *, none_score: float = -1.0, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Assign each row (source child) one column (target child) at most once, maximising the
    summed score; a row whose score would fall below ``none_score`` gets -1.

    Returns:
        (column per row, -1 when unmatched; the pair's row-softmax times column-softmax
        probability at ``temperature``, 0 if none).
    """
    from scipy.optimize import linear_sum_assignment

    rows, cols = scores.shape
    out, probs = np.full(rows, -1, dtype=np.int64), np.zeros(rows)
    if not rows or not cols:
        return out, probs
    # Leaving a row unmatched scores `none_score`, so a pair is worth its gain over that; a
    # pair that gains nothing is never worth taking. The best matching of the gains, clipped
    # at 0, is the best assignment with a "none" column per row, without its (rows x rows)
    # block: memory stays (rows x cols).
    gain = np.maximum(scores - none_score, 0.0)
    soft = softmax(scores, 1, temperature) * softmax(scores, 0, temperature)
    for i, j in zip(*linear_sum_assignment(gain, maximize=True), strict=True):
        if gain[i, j] > 0:
            out[i], probs[i] = j, soft[i, j]
    return out, probs


@dataclass
class FamilyMatcher:
    """Scores and matches source families against a target category's children.

    Args:
        source, target: the embedded trees.
        text_weight, size_weight, size_cap, support_weight, none_score, temperature: see the
            module docstring.
        name_map: orthogonal (dim, dim) map applied to the source name embeddings (``None``:
            as they are; see :meth:`refined`).
    """

    source: TreeView
    target: TreeView
    text_weight: float = 0.25
    size_weight: float = 1.0
    size_cap: float = 1.0
    support_weight: float = 1.0
    none_score: float = -1.0
    temperature: float = 0.25
    name_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._below_s = descendants(self.source)
        self._below_t = descendants(self.target)
        self._roots_t = [g for g, p in enumerate(self.target.parents) if p < 0]
        self._support_cache: dict[tuple[tuple[int, ...], int], np.ndarray] = {}
        self.use_map(self.name_map)

    def use_map(self, name_map: np.ndarray | None) -> None:
        """Map the source names with ``name_map`` (and re-measure the random-pair cosines)."""
        self.name_map, names = name_map, self.source.name_emb
        if name_map is not None:
            names = names @ name_map
            names = names / np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-12)
        self._names = names
        self._moments = cosine_moments(names, self.target.name_emb)

    def _slots(self, anchor: int) -> tuple[list[int], list[int]]:
        """The target children of ``anchor`` (roots for -1) and ``anchor``'s whole subtree."""
        if anchor < 0:
            return self._roots_t, list(range(len(self.target)))
        return list(self.target.children[anchor]), self._below_t.get(anchor, [])

    def scores(self, family: Sequence[int], anchor: int) -> tuple[list[int], np.ndarray]:
        """Target children of ``anchor`` and the (len(family), len(children)) score matrix."""
        slots, subtree = self._slots(anchor)
        if not slots or not len(family):
            return slots, np.zeros((len(family), len(slots)))
        mean, spread = self._moments
        cos = self._names[list(family)] @ self.target.name_emb[slots].T
        out = self.text_weight * (cos - mean) / spread
        size_s = np.log1p([len(self._below_s.get(s, ())) for s in family])
        size_t = np.log1p([len(self._below_t.get(g, ())) for g in slots])
        gap = np.minimum(np.abs(size_s[:, None] - size_t[None, :]), self.size_cap)
        out -= self.size_weight * gap
        if self.support_weight:
            key = (tuple(family), anchor)
            if key not in self._support_cache:
                self._support_cache[key] = self._support(family, anchor, slots, subtree)
            out += self.support_weight * self._support_cache[key]
        return slots, out

    def _support(
        self, family: Sequence[int], anchor: int, slots: list[int], subtree: list[int]
    ) -> np.ndarray:
        """Share of each source child's descendants voting (nearest full path inside
        ``anchor``'s subtree) for a target under each slot."""
        out = np.zeros((len(family), len(slots)))
        if not subtree:
            return out
        column = {g: j for j, g in enumerate(slots)}
        keys = self.target.path_emb[subtree]
        for i, s in enumerate(family):
            below = self._below_s.get(s, [])
            if not below:
                continue
            votes = np.asarray(subtree)[(self.source.path_emb[below] @ keys.T).argmax(axis=1)]
            for g in votes.tolist():
                line = lineage(self.target.parents, g)
                slot = line[-1] if anchor < 0 else line[line.index(anchor) - 1]
                out[i, column[slot]] += 1.0
            out[i] /= len(below)
        return out

    def match(
        self, family: Sequence[int], anchor: int, parent_confidence: float = 1.0
    ) -> dict[int, tuple[int, float, np.ndarray, np.ndarray]]:
        """Source child -> (target position, confidence, candidate positions, their row
        probabilities) for the matched children of a family whose parent maps to ``anchor``."""
        slots, scores = self.scores(family, anchor)
        picked, probs = match_family(
            scores, none_score=self.none_score, temperature=self.temperature
        )
        out = {}
        cands = np.asarray(slots, dtype=np.int64)
        rows = softmax(scores, 1, self.temperature) if len(slots) else scores
        for i, s in enumerate(family):
            if picked[i] >= 0:
                conf = float(probs[i]) * parent_confidence
                out[s] = (slots[picked[i]], conf, cands, rows[i])
        return out

    def top_down(self) -> dict[int, tuple[int, float]]:
        """Every source category matched family by family from the roots down (source
        position -> (target position, confidence)); unmatched ones and their subtrees left out."""
        out: dict[int, tuple[int, float]] = {}
        families = [([s for s, p in enumerate(self.source.parents) if p < 0], -1, 1.0)]
        while families:
            family, anchor, confidence = families.pop()
            for s, (g, conf, _, _) in self.match(family, anchor, confidence).items():
                out[s] = (g, conf)
                if self.source.children[s]:
                    families.append((list(self.source.children[s]), g, conf))
        return out

    def refined(self, rounds: int = 2, top: float = 0.5) -> FamilyMatcher:
        """Self-learning of :attr:`name_map` (see the module docstring); returns ``self``."""
        for _ in range(rounds):
            matched = self.top_down()
            pairs = sorted(matched, key=lambda s: -matched[s][1])[: int(top * len(matched))]
            if len(pairs) < self.source.name_emb.shape[1]:
                break
            a = self.source.name_emb[pairs]
            b = self.target.name_emb[[matched[s][0] for s in pairs]]
            u, _, vt = np.linalg.svd(a.T @ b)
            self.use_map(u @ vt)
        return self


def matched_items(
    matcher: FamilyMatcher | None, family: Sequence[int], anchor: int, confidence: float
) -> dict[int, ReviewItem]:
    """The rules of the family's children that ``matcher`` matches (none without a matcher);
    ``confidence`` is their parent's."""
    if matcher is None:
        return {}
    return {
        s: review_item(matcher.source, matcher.target, s, c, p, Choice(g, conf, "family-structure"))
        for s, (g, conf, c, p) in matcher.match(family, anchor, confidence).items()
    }
