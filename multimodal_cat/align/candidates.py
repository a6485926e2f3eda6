"""Candidate target categories for a source category, and the features the re-ranker scores.

Candidates of a source category ``s`` whose parent is mapped to the *anchor* ``a``:

- ``a`` itself (the nearest suitable ancestor when nothing deeper fits), its parent, and
  the categories up to three levels below ``a`` (for a source root: every target root);
- the ``top_k`` targets nearest by full-path and by name embedding;
- targets with the same name (word set), and the longest target path that is a prefix
  of ``s``'s path (the lexical baseline);
- targets of *reference* rules (known rules, e.g. an older release's) whose source
  category is among the nearest to ``s``.

Example:
    >>> FEATURE_NAMES[:3]
    ('cos_path', 'cos_name', 'name_eq')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.taxonomy.index import path_key, split_path

FEATURE_NAMES: tuple[str, ...] = (
    "cos_path",  # cosine of full-path embeddings (calibrated: see REFERENCE_COSINE)
    "cos_name",  # cosine of name embeddings (calibrated)
    "name_eq",  # same content words in the names
    "name_jaccard",  # word overlap of the names
    "path_jaccard",  # word overlap of the full paths
    "is_anchor",  # the candidate is the parent's target
    "below_anchor",  # a descendant of the parent's target (<= 3 levels)
    "child_of_anchor",  # a child of the parent's target
    "depth_vs_anchor",  # depth difference with the parent's target
    "lexical_prefix",  # longest target path that is a prefix of the source path
    "best_name",  # highest name cosine among the candidates
    "best_path",  # highest path cosine among the candidates
    "no_anchor",  # the source is a root (no parent target)
    "above_anchor",  # an ancestor of the parent's target
    "path_eq",  # identical full path (case-insensitive)
    "name_in_source",  # the candidate's name words are all in the source name
    "source_in_name",  # the source's name words are all in the candidate name
    "head_eq",  # same last word (head noun) in both names, unless generic (generic_heads)
    "ref_name",  # best name cosine of a reference rule's source that maps to the candidate
    "ref_path",  # best path cosine of such a reference source
    "depth",  # candidate depth / 7
    "ref_path_high",  # ref_path above 0.85, rescaled to [0, 1]
    "ref_name_high",  # ref_name above 0.85, rescaled to [0, 1]
)

# Features that need the two trees to share words; zero across languages.
LEXICAL_FEATURES: tuple[str, ...] = (
    "name_eq",
    "name_jaccard",
    "path_jaccard",
    "lexical_prefix",
    "path_eq",
    "name_in_source",
    "source_in_name",
    "head_eq",
)


@dataclass
class Reference:
    """Known rules used as nearest-neighbour evidence: a source view and position -> target position."""

    view: TreeView
    targets: dict[int, int]


def rule_positions(mapping: Any, source: TreeView, target: TreeView) -> dict[int, int]:
    """Source position -> first target position, for the rules of ``mapping`` (a
    :class:`~multimodal_cat.mapping.Mapping`) whose ids both trees have."""
    s_pos = {cid: i for i, cid in enumerate(source.ids)}
    t_pos = {cid: i for i, cid in enumerate(target.ids)}
    out = {}
    for sid, rule in mapping.rules.items():
        if sid in s_pos and rule.target_ids and rule.target_ids[0] in t_pos:
            out[s_pos[sid]] = t_pos[rule.target_ids[0]]
    return out


# Mean and spread of the cosine between random (source, target) pairs, full paths and names,
# on the pair the default weights were fitted on (Shopify 2022-02 -> 2025-01, MiniLM). Every
# pair's cosines are put on this scale (see calibration), so that the weights hold for encoders
# whose cosines crowd into a narrow band (E5: 0.82 +- 0.02 between random categories).
REFERENCE_COSINE = {"path": (0.277, 0.122), "name": (0.141, 0.103)}


@dataclass
class CandidateIndex:
    """Per-source precomputed candidate lists (global nearest targets, lexical, references),
    and the affine maps ``(scale, shift)`` that put path and name cosines on the reference
    scale."""

    top_path: np.ndarray
    top_name: np.ndarray
    lexical: list[int]
    by_name: dict[frozenset[str], list[int]]
    ref_name: list[dict[int, float]] = field(default_factory=list)
    ref_path: list[dict[int, float]] = field(default_factory=list)
    calibration: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"path": (1.0, 0.0), "name": (1.0, 0.0)}
    )
    generic_heads: frozenset[str] = frozenset()


def cosine_moments(a: np.ndarray, b: np.ndarray, samples: int = 4000) -> tuple[float, float]:
    """Mean and spread of the cosine between random rows of ``a`` and ``b`` (unit length);
    a fixed seed keeps it repeatable; ``(0, 1)`` when either is empty."""
    if not len(a) or not len(b):
        return 0.0, 1.0
    rng = np.random.default_rng(0)
    sims = (a[rng.integers(0, len(a), samples)] * b[rng.integers(0, len(b), samples)]).sum(axis=1)
    return float(sims.mean()), max(float(sims.std()), 1e-6)


def calibration(
    source: TreeView, target: TreeView, samples: int = 4000
) -> dict[str, tuple[float, float]]:
    """``kind -> (scale, shift)`` mapping this pair's random-pair cosine mean and spread onto
    :data:`REFERENCE_COSINE` (identity without embeddings)."""
    out = {"path": (1.0, 0.0), "name": (1.0, 0.0)}
    if source.path_emb is None or source.path_emb.shape[1] <= 1 or not len(target):
        return out
    if not len(source):
        return out
    for kind in out:
        a, b = getattr(source, f"{kind}_emb"), getattr(target, f"{kind}_emb")
        sims_mean, sims_std = cosine_moments(a, b, samples)
        mean, spread = REFERENCE_COSINE[kind]
        scale = spread / sims_std
        out[kind] = (scale, mean - scale * sims_mean)
    return out


def _top_k(queries: np.ndarray, keys: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Column positions of the ``k`` largest dot products per query row (unordered)."""
    k = max(1, min(k, keys.shape[0]))
    out = np.zeros((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start : start + chunk] @ keys.T
        if k < keys.shape[0]:
            out[start : start + chunk] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            out[start : start + chunk] = np.arange(k)
    return out


def lexical_prefix(source: TreeView, target: TreeView) -> list[int]:
    """For each source, the target whose full path is the longest prefix of its path (-1: none)."""
    by_path = {path_key(p): i for i, p in enumerate(target.paths)}
    out = []
    for path in source.paths:
        parts = split_path(path)
        found = -1
        for size in range(len(parts), 0, -1):
            found = by_path.get(path_key(parts[:size]), -1)
            if found >= 0:
                break
        out.append(found)
    return out


def _reference_scores(
    source: TreeView, reference: Reference | None, k: int, leave_one_out: bool
) -> tuple[list[dict[int, float]], list[dict[int, float]]]:
    empty: list[dict[int, float]] = [{} for _ in range(len(source))]
    if reference is None or not reference.targets or source.path_emb.shape[1] == 1:
        return empty, [{} for _ in range(len(source))]
    known = np.array(sorted(reference.targets))
    out = []
    for source_emb, ref_emb in (
        (source.name_emb, reference.view.name_emb),
        (source.path_emb, reference.view.path_emb),
    ):
        scores_by_source: list[dict[int, float]] = []
        keys = ref_emb[known]
        kk = max(1, min(k, len(known)))
        for start in range(0, len(source), 2048):
            sims = source_emb[start : start + 2048] @ keys.T
            if leave_one_out:
                rows = np.arange(start, min(start + 2048, len(source)))
                hit = np.searchsorted(known, rows)
                ok = (hit < len(known)) & (known[np.minimum(hit, len(known) - 1)] == rows)
                sims[np.nonzero(ok)[0], hit[ok]] = -1.0
            best = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < len(known) else None
            for row in range(sims.shape[0]):
                cols = best[row] if best is not None else range(len(known))
                found: dict[int, float] = {}
                for col in cols:
                    target = reference.targets[int(known[col])]
                    found[target] = max(found.get(target, -1.0), float(sims[row, col]))
                scores_by_source.append(found)
        out.append(scores_by_source)
    return out[0], out[1]


def build_index(
    source: TreeView,
    target: TreeView,
    *,
    top_k: int = 10,
    reference: Reference | None = None,
    leave_one_out: bool = False,
) -> CandidateIndex:
    """Precompute the global candidate lists of every source category."""
    if source.path_emb.shape[1] > 1 and len(target):
        top_path = _top_k(source.path_emb, target.path_emb, top_k)
        top_name = _top_k(source.name_emb, target.name_emb, top_k)
    else:
        top_path = top_name = np.zeros((len(source), 0), dtype=np.int64)
    by_name: dict[frozenset[str], list[int]] = {}
    for position, name_words in enumerate(target.name_words):
        by_name.setdefault(name_words, []).append(position)
    ref_name, ref_path = _reference_scores(source, reference, top_k, leave_one_out)
    return CandidateIndex(
        top_path,
        top_name,
        lexical_prefix(source, target),
        by_name,
        ref_name,
        ref_path,
        calibration(source, target),
        generic_heads(source) | generic_heads(target),
    )


def head_word(name: str) -> str:
    """A name's last word, lower-cased, a final ``s`` dropped: its head noun, roughly."""
    return (name.lower().split() or [""])[-1].rstrip("s")


# Share of a tree's names a head word must end to count as generic. Shopify -> Google,
# legacy -> 2025 and the Flipkart -> Google dev sample score the same at 0.03 and 0.05; GS1
# nodes outside the judged samples chose 0.03 (GS1's "Accessories" 4.6%, "Supplies" 3.3%).
GENERIC_HEAD_SHARE, GENERIC_HEAD_MIN = 0.03, 10  # the minimum: a small tree has none


def generic_heads(
    view: TreeView, share: float = GENERIC_HEAD_SHARE, minimum: int = GENERIC_HEAD_MIN
) -> frozenset[str]:
    """Head words that end at least ``share`` of a tree's names, and ``minimum`` names (GS1's
    "Products", Google's "Accessories"): two names sharing such a head say little about
    being the same kind, so ``head_eq`` leaves them out.

    Example:
        >>> from multimodal_cat.taxonomy import Taxonomy
        >>> names = ["Bread Products", "Tobacco Products", "Shoes", "Boots"]
        >>> view = TreeView.from_taxonomy(Taxonomy.from_paths(names))
        >>> sorted(generic_heads(view, share=0.5, minimum=2))
        ['product']
    """
    counts = Counter(head_word(name) for name in view.names)
    least = max(minimum, share * len(view))
    return frozenset(w for w, c in counts.items() if c >= least)


def candidate_features(
    source: TreeView,
    target: TreeView,
    index: CandidateIndex,
    s: int,
    anchor: int,
    *,
    floor: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate target positions for source ``s`` (parent mapped to ``anchor``, -1 if none) and
    their feature rows (len(candidates), len(FEATURE_NAMES))."""
    ref_name = index.ref_name[s] if index.ref_name else {}
    ref_path = index.ref_path[s] if index.ref_path else {}
    pool = set(index.top_path[s].tolist()) | set(index.top_name[s].tolist())
    pool |= set(index.by_name.get(source.name_words[s], ())) | set(ref_name) | set(ref_path)
    if index.lexical[s] >= 0:
        pool.add(index.lexical[s])
    below: set[int] = set()
    above: set[int] = set()
    if anchor >= 0:
        below = set(target.descendants(anchor, 3))
        above = set(target.ancestors(anchor)[1:])
        pool |= below | {anchor}
        if target.parents[anchor] >= 0:
            pool.add(target.parents[anchor])
    else:  # a source root: every target root is a candidate
        pool |= {g for g, parent in enumerate(target.parents) if parent < 0}
    lex = index.lexical[s]
    if floor and lex >= 0:  # the longest shared path prefix: the answer lies at or below it
        pool = {g for g in pool if lex in target.ancestors(g)} | {lex}
    if not pool:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    cands = np.array(sorted(pool), dtype=np.int64)
    (a_path, b_path), (a_name, b_name) = index.calibration["path"], index.calibration["name"]
    cos_path = a_path * (target.path_emb[cands] @ source.path_emb[s]) + b_path
    cos_name = a_name * (target.name_emb[cands] @ source.name_emb[s]) + b_name
    s_words, s_path_words = source.name_words[s], source.path_words[s]
    s_head = head_word(source.names[s])
    s_head = "" if s_head in index.generic_heads else s_head
    s_path = source.paths[s].lower()
    anchor_depth = target.depths[anchor] if anchor >= 0 else 0
    rows = []
    for j, g in enumerate(cands.tolist()):
        g_words, g_path_words = target.name_words[g], target.path_words[g]
        rp, rn = ref_path.get(g, 0.0), ref_name.get(g, 0.0)
        rows.append(
            (
                cos_path[j],
                cos_name[j],
                float(s_words == g_words),
                len(s_words & g_words) / max(1, len(s_words | g_words)),
                len(s_path_words & g_path_words) / max(1, len(s_path_words | g_path_words)),
                float(g == anchor),
                float(g in below),
                float(anchor >= 0 and target.parents[g] == anchor),
                float(target.depths[g] - anchor_depth) if anchor >= 0 else 0.0,
                float(g == index.lexical[s]),
                float(cos_name[j] == cos_name.max()),
                float(cos_path[j] == cos_path.max()),
                float(anchor < 0),
                float(g in above),
                float(target.paths[g].lower() == s_path),
                float(bool(g_words) and g_words <= s_words),
                float(bool(s_words) and s_words <= g_words),
                float(bool(s_head) and head_word(target.names[g]) == s_head),
                rn,
                rp,
                target.depths[g] / 7.0,
                max(0.0, rp - 0.85) / 0.15,
                max(0.0, rn - 0.85) / 0.15,
            )
        )
    return cands, np.asarray(rows, dtype=np.float32)


def lexical_share(source: TreeView, index: CandidateIndex) -> float:
    """Share of source categories with a shared path prefix or a same-named target: how much
    of the wording the trees share (about 1 between two English trees, 0 across languages)."""
    if not len(source):
        return 0.0
    hits = sum(
        index.lexical[s] >= 0 or bool(index.by_name.get(source.name_words[s]))
        for s in range(len(source))
    )
    return hits / len(source)
