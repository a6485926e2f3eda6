"""Turn node log-probabilities and tag scores into :class:`~multimodal_cat.predictions.Prediction` records.

The category is the best leaf (always a path of the tree) or, with ``min_confidence``, the
deepest node on that leaf's path whose probability reaches the threshold.

Example:
    >>> space = LabelSpace.from_paths(["A > B", "A > C"])
    >>> probs = torch.tensor([[1.0, 0.7, 0.3]]).log()
    >>> decode_predictions(probs, space)[0].category_path
    'A > B'
"""

from __future__ import annotations

import torch

from multimodal_cat.modeling.labels import LabelSpace, TagGroup, value_slices
from multimodal_cat.predictions import CategoryScore, Prediction, TagScore


def coarse_node(probs: list[float], path: list[int], min_confidence: float) -> int:
    """Deepest node of ``path`` (root first) with probability >= ``min_confidence``; the root otherwise."""
    for node in reversed(path):
        if probs[node] >= min_confidence:
            return node
    return path[0]


def _alternatives(
    probs: torch.Tensor, candidates: torch.Tensor, chosen: int, space: LabelSpace, top_k: int
) -> list[CategoryScore]:
    """The chosen node first, then the best other candidates, ``top_k`` in all."""
    scores = probs[candidates]
    best = torch.topk(scores, min(top_k + 1, len(candidates))).indices
    picked = [chosen] + [n for n in candidates[best].tolist() if n != chosen]
    return [CategoryScore(space.ids[i], space.paths[i], float(probs[i])) for i in picked[:top_k]]


def decode_tags(scores: torch.Tensor, groups: list[TagGroup], threshold: float) -> list[TagScore]:
    """Tags of one row: the best value of each single-valued group (always, with its score) and
    every value of a multi-valued group whose score reaches ``threshold``."""
    out: list[TagScore] = []
    for group, where in zip(groups, value_slices(groups), strict=True):
        part = scores[where]
        if group.multi_valued:
            hits = [
                (float(s), v)
                for s, v in zip(part, group.values, strict=True)
                if float(s) >= threshold
            ]
            out.extend(TagScore(group.attribute, v, s) for s, v in sorted(hits, reverse=True))
        else:
            best = int(torch.argmax(part))
            out.append(TagScore(group.attribute, group.values[best], float(part[best])))
    return out


def decode_predictions(
    node_log_probs: torch.Tensor,
    space: LabelSpace,
    top_k: int = 5,
    min_confidence: float | None = None,
    tag_scores: torch.Tensor | None = None,
    tag_groups: list[TagGroup] | None = None,
    tag_threshold: float = 0.5,
) -> list[Prediction]:
    """One prediction per row of ``node_log_probs`` (batch, n_nodes).

    Args:
        node_log_probs: Log-probability of every node (inner nodes = sums over their leaves).
        space: The taxonomy nodes.
        top_k: Number of alternatives (the prediction first). Leaf predictions list leaves;
            coarse ones list nodes of the same depth.
        min_confidence: Back off to the deepest node on the best leaf's path with at least this
            probability; ``None`` keeps the leaf.
        tag_scores: (batch, n_tag_values) probabilities from the tag head.
        tag_groups: The groups ``tag_scores`` follows.
        tag_threshold: See :func:`decode_tags`.
    """
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1] or None; got {min_confidence}.")
    probs = node_log_probs.exp()
    leaves = torch.tensor(space.leaves, dtype=torch.long)
    depths = torch.tensor(space.depths)
    results = []
    for row in range(probs.shape[0]):
        row_probs = probs[row]
        leaf = int(leaves[torch.argmax(row_probs[leaves])])
        chosen, candidates, warnings = leaf, leaves, []
        if min_confidence is not None:
            chosen = coarse_node(row_probs.tolist(), space.ancestors(leaf), min_confidence)
            if chosen != leaf:
                candidates = torch.nonzero(depths == depths[chosen]).squeeze(1)
            if float(row_probs[chosen]) < min_confidence:
                warnings.append(
                    f"No category reaches confidence {min_confidence}; returning the top level "
                    f"{space.paths[chosen]!r} ({float(row_probs[chosen]):.2f})."
                )
        tags = []
        if tag_scores is not None and tag_groups:
            tags = decode_tags(tag_scores[row], tag_groups, tag_threshold)
        results.append(
            Prediction(
                category_id=space.ids[chosen],
                category_path=space.paths[chosen],
                confidence=float(row_probs[chosen]),
                alternatives=_alternatives(row_probs, candidates, chosen, space, top_k),
                tags=tags,
                warnings=warnings,
            )
        )
    return results
