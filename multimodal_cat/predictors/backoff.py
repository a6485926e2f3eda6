"""Back off from a predictor's best category to a surer, coarser one (``min_confidence``).

A predictor that scores categories of a tree (the zero-shot search scores its leaves) gives a
probability to every inner node too: the sum over the scored categories below it (and the
node itself, when it is scored). :func:`coarse_predictions` then picks, on the best category's
path, the deepest node whose probability reaches ``min_confidence``, with the same rule as the
trained model's decoding (:func:`multimodal_cat.modeling.decoding.coarse_node`).

Example:
    >>> import numpy as np
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Shoes > Boots", "Shoes > Sneakers", "Bags"])
    >>> probs = np.array([[0.4, 0.35, 0.25]])
    >>> coarse_predictions(tree, ["Shoes > Boots", "Shoes > Sneakers", "Bags"], probs, 0.6)[0].category_path
    'Shoes'
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.modeling.decoding import coarse_node
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.taxonomy import Taxonomy


@dataclass(frozen=True)
class _Paths:
    """Node positions of a tree and, for each scored class, the nodes on its path."""

    ids: list[str]
    paths: list[str]
    depths: np.ndarray
    class_nodes: list[int]
    class_paths: list[list[int]]  # root first, the class's own node last
    pairs: tuple[np.ndarray, np.ndarray]  # (class column, node on its path), flattened


@functools.lru_cache(maxsize=8)
def _paths(taxonomy: Taxonomy, classes: tuple[str, ...]) -> _Paths:
    nodes = list(taxonomy)
    position = {c.id: i for i, c in enumerate(nodes)}
    class_paths = [
        [position[a.id] for a in taxonomy.ancestors(cid, include_self=True)] for cid in classes
    ]
    columns = [column for column, path in enumerate(class_paths) for _ in path]
    on_path = [node for path in class_paths for node in path]
    return _Paths(
        ids=[c.id for c in nodes],
        paths=[c.full_path for c in nodes],
        depths=np.array([c.depth for c in nodes]),
        class_nodes=[path[-1] for path in class_paths],
        class_paths=class_paths,
        pairs=(np.array(columns, dtype=np.int64), np.array(on_path, dtype=np.int64)),
    )


def node_probabilities(taxonomy: Taxonomy, classes: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """Probability (n, len(taxonomy)) of every node: the sum over the scored classes below it
    (itself included), columns in the tree's iteration order."""
    tree = _paths(taxonomy, tuple(classes))
    columns, nodes = tree.pairs
    out = np.zeros((len(tree.ids), probs.shape[0]), dtype=np.float64)
    np.add.at(out, nodes, np.asarray(probs, dtype=np.float64).T[columns])
    return out.T


def coarse_predictions(
    taxonomy: Taxonomy,
    classes: Sequence[str],
    probs: np.ndarray,
    min_confidence: float,
    *,
    top_k: int = 5,
    decimals: int | None = None,
) -> list[Prediction]:
    """One prediction per row of ``probs`` (n, len(classes)), backed off to ``min_confidence``.

    Args:
        taxonomy: The tree the classes belong to.
        classes: Category id of each column of ``probs``.
        probs: Probabilities over ``classes``; rows sum to 1.
        min_confidence: The deepest node on the best class's path whose probability reaches
            this is chosen; when none does, the root, with a warning.
        top_k: Alternatives, the chosen category first: the best classes when it is the best
            class, else the best nodes of its depth.
        decimals: Round the alternatives' scores to this many decimals (``None``: keep).

    Raises:
        ValueError: ``min_confidence`` is outside [0, 1].
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidArgumentError(f"min_confidence must be in [0, 1] or None; got {min_confidence}.")
    tree = _paths(taxonomy, tuple(classes))
    nodes = node_probabilities(taxonomy, classes, probs)
    out = []
    for row, node_row in zip(np.asarray(probs), nodes, strict=True):
        best = int(np.argmax(row))
        chosen = coarse_node(node_row.tolist(), tree.class_paths[best], min_confidence)
        if chosen == tree.class_nodes[best]:
            order = np.argsort(-row)[: max(1, top_k)]
            picked = [(tree.class_nodes[j], float(row[j])) for j in order]
        else:
            same_depth = np.flatnonzero(tree.depths == tree.depths[chosen])
            order = same_depth[np.argsort(-node_row[same_depth], kind="stable")]
            others = [int(n) for n in order if n != chosen][: max(1, top_k) - 1]
            picked = [(n, float(node_row[n])) for n in [chosen, *others]]
        alternatives = [
            CategoryScore(tree.ids[n], tree.paths[n], s if decimals is None else round(s, decimals))
            for n, s in picked
        ]
        reached = float(node_row[chosen])
        warnings = []
        if reached < min_confidence:
            warnings.append(
                f"No category reaches confidence {min_confidence}; returning the top level "
                f"{tree.paths[chosen]!r} ({reached:.2f})."
            )
        own = chosen == tree.class_nodes[best]  # the class itself: its own probability
        out.append(
            Prediction(
                category_id=tree.ids[chosen],
                category_path=tree.paths[chosen],
                confidence=float(row[best]) if own else reached,
                alternatives=alternatives,
                warnings=warnings,
            )
        )
    return out
