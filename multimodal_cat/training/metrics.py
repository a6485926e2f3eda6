"""Evaluation metrics for hierarchical categories and grouped tags.

The pure functions take numpy arrays of node indices plus the tree: its
:class:`~multimodal_cat.taxonomy.TaxonomyIndex` (e.g. ``model.label_space``) or its parent indices,
so a benchmark can call them without a model; :func:`build_compute_metrics` wraps them for the
Hugging Face ``Trainer``. Ancestor chains and leaves come from the tree index.

Example:
    >>> parents = [-1, 0, 0, -1]            # A, A > B, A > C, D
    >>> category_metrics(np.array([1, 2, 3]), np.array([1, 1, 3]), parents)["leaf_accuracy"]
    0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from multimodal_cat.modeling.labels import TagGroup, value_slices
from multimodal_cat.taxonomy.index import IGNORE_INDEX, TaxonomyIndex, ancestor_paths, leaves_of

__all__ = [
    "IGNORE_INDEX",
    "build_compute_metrics",
    "category_metrics",
    "hierarchical_prf",
    "macro_f1",
    "per_level_accuracy",
    "tag_metrics",
    "tag_predictions",
]

Tree = TaxonomyIndex | Sequence[int]  # a tree index, or the parent index of each node


def _ancestor_paths(tree: Tree) -> list[tuple[int, ...]]:
    return tree.ancestor_paths if isinstance(tree, TaxonomyIndex) else ancestor_paths(tree)


def _leaves(tree: Tree) -> list[int]:
    return tree.leaves if isinstance(tree, TaxonomyIndex) else leaves_of(tree)


def per_level_accuracy(pred: np.ndarray, true: np.ndarray, tree: Tree) -> dict[int, float]:
    """Accuracy at each depth (1 = roots) over rows whose label reaches that depth."""
    paths = _ancestor_paths(tree)
    hits: dict[int, list[bool]] = {}
    for p, t in zip(pred, true, strict=True):
        p_path = paths[p] if 0 <= p < len(paths) else ()
        for depth, node in enumerate(paths[t], start=1):
            hits.setdefault(depth, []).append(len(p_path) >= depth and p_path[depth - 1] == node)
    return {depth: float(np.mean(v)) for depth, v in sorted(hits.items())}


def hierarchical_prf(pred: np.ndarray, true: np.ndarray, tree: Tree) -> tuple[float, float, float]:
    """Hierarchical precision, recall, F1 over ancestor-augmented sets (Kiritchenko et al.)."""
    paths = _ancestor_paths(tree)
    overlap = n_pred = n_true = 0
    for p, t in zip(pred, true, strict=True):
        p_set = set(paths[p]) if 0 <= p < len(paths) else set()
        t_set = set(paths[t])
        overlap += len(p_set & t_set)
        n_pred += len(p_set)
        n_true += len(t_set)
    precision = overlap / n_pred if n_pred else 0.0
    recall = overlap / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def macro_f1(pred: np.ndarray, true: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Macro-averaged F1 over ``classes`` (default: the classes present in ``true``)."""
    classes = np.unique(true) if classes is None else classes
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (true == c))
        denom = np.sum(pred == c) + np.sum(true == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def category_metrics(pred: np.ndarray, true: np.ndarray, tree: Tree) -> dict[str, float]:
    """All category metrics for predicted and true node indices (rows with ``true == -100`` dropped).

    Returns:
        ``level{d}_accuracy``, ``leaf_accuracy`` / ``leaf_macro_f1`` (rows labelled with a leaf),
        ``hierarchical_precision`` / ``_recall`` / ``_f1``, ``valid_path_rate`` (share of
        predictions that are nodes of the tree).
    """
    pred, true = np.asarray(pred).astype(int), np.asarray(true).astype(int)
    keep = true != IGNORE_INDEX
    pred, true = pred[keep], true[keep]
    if not len(true):
        return {}
    out = {f"level{d}_accuracy": acc for d, acc in per_level_accuracy(pred, true, tree).items()}
    leaf_rows = np.isin(true, _leaves(tree))
    if leaf_rows.any():
        out["leaf_accuracy"] = float(np.mean(pred[leaf_rows] == true[leaf_rows]))
        out["leaf_macro_f1"] = macro_f1(pred[leaf_rows], true[leaf_rows])
    hp, hr, hf = hierarchical_prf(pred, true, tree)
    out.update(hierarchical_precision=hp, hierarchical_recall=hr, hierarchical_f1=hf)
    out["valid_path_rate"] = float(np.mean((pred >= 0) & (pred < len(tree))))
    return out


def tag_predictions(
    scores: np.ndarray, groups: Sequence[TagGroup], threshold: float = 0.5
) -> np.ndarray:
    """0/1 decisions from tag logits: argmax within single-valued groups, sigmoid >= threshold otherwise."""
    decisions = np.zeros_like(scores, dtype=np.int8)
    for group, part in zip(groups, value_slices(groups), strict=True):
        if group.multi_valued:
            decisions[:, part] = (1.0 / (1.0 + np.exp(-scores[:, part]))) >= threshold
        else:
            decisions[np.arange(len(scores)), part.start + scores[:, part].argmax(-1)] = 1
    return decisions


def tag_metrics(decisions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Micro and macro F1 over tag values, counting only entries whose label is not -100."""
    known = labels != IGNORE_INDEX
    truth = (labels == 1) & known
    predicted = (decisions == 1) & known
    tp = (truth & predicted).sum(0)
    fp = (~truth & predicted).sum(0)
    fn = (truth & ~predicted).sum(0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    used = (tp + fp + fn) > 0
    per_value = 2 * tp[used] / np.maximum(2 * tp[used] + fp[used] + fn[used], 1)
    return {
        "tag_micro_f1": float(2 * tp.sum() / micro_denom) if micro_denom else 0.0,
        "tag_macro_f1": float(per_value.mean()) if used.any() else 0.0,
    }


def as_tuple(value: Any) -> tuple:
    """A ``Trainer`` prediction output's field as a tuple (a single output is not wrapped)."""
    return value if isinstance(value, tuple) else (value,)


def build_compute_metrics(
    tree: Tree, tag_groups: Sequence[TagGroup] = ()
) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for ``Trainer``, reading ``(category_logits, tag_logits)``.

    (The model's config tells ``Trainer`` to drop the other outputs at evaluation.)

    Example:
        >>> trainer = Trainer(model, args, compute_metrics=build_compute_metrics(
        ...     model.config.category_parents, model.config.tag_group_list))  # doctest: +SKIP
    """
    if not isinstance(tree, TaxonomyIndex):
        tree = list(tree)
    leaves = np.asarray(_leaves(tree), dtype=np.int64)
    groups = list(tag_groups)

    def compute_metrics(eval_prediction: Any) -> dict[str, float]:
        predictions = as_tuple(eval_prediction.predictions)
        label_ids = as_tuple(eval_prediction.label_ids)
        category_logits = np.asarray(predictions[0])
        pred_nodes = leaves[category_logits.argmax(-1)]
        metrics = category_metrics(pred_nodes, np.asarray(label_ids[0]).reshape(-1), tree)
        if groups and len(predictions) > 1 and len(label_ids) > 1:
            decisions = tag_predictions(np.asarray(predictions[1]), groups)
            metrics.update(tag_metrics(decisions, np.asarray(label_ids[1])))
        return metrics

    return compute_metrics
