"""Back-off: answer a coarser category when the leaf is unsure but its branch is sure.

A category's probability is the sum of its subtree's candidates' probabilities. When the best
candidate's probability is below ``leaf_min``, the answer moves up its ancestors to the first
one whose summed probability reaches ``branch_min``; that ancestor becomes the prediction,
its summed probability the confidence, and the row says so in ``Prediction.warnings``. A root
is not answered by default (``min_depth=2``): "Apparel & Accessories" is too coarse to act
on, so such a row keeps its leaf and its low confidence.

Example:
    >>> from multimodal_cat.align.embeddings import TreeView
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> from multimodal_cat.zero_shot.search import CategoryIndex
    >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Toys > Puzzles", "Tools > Drills"])
    >>> index = CategoryIndex(TreeView.from_taxonomy(tree), "leaves", None)
    >>> probs = np.array([0.45, 0.45, 0.10])
    >>> choice = back_off(probs, index, leaf_min=0.6, branch_min=0.8, min_depth=1)
    >>> index.view.paths[choice.position], round(choice.confidence, 2), choice.backed_off
    ('Toys', 0.9, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multimodal_cat.zero_shot.search import CategoryIndex

# Chosen on the non-test rows of Flipkart and fashion (benchmarks/zero_shot_general.py).
DEFAULT_LEAF_MIN = 0.3
DEFAULT_BRANCH_MIN = 0.9
DEFAULT_MIN_DEPTH = 2  # roots are too coarse to answer


@dataclass(frozen=True)
class Choice:
    """The answer for one row: a view position, its confidence, and whether it backed off."""

    position: int
    confidence: float
    backed_off: bool = False
    leaf_position: int = -1
    leaf_confidence: float = 0.0


def subtree_probability(probs: np.ndarray, index: CategoryIndex, position: int) -> float:
    """Summed probability of the candidates in ``position``'s subtree."""
    return float(probs[index.below[position]].sum())


def back_off(
    probs: np.ndarray,
    index: CategoryIndex,
    *,
    leaf_min: float = DEFAULT_LEAF_MIN,
    branch_min: float = DEFAULT_BRANCH_MIN,
    min_depth: int = DEFAULT_MIN_DEPTH,
) -> Choice:
    """The :class:`Choice` for one row of candidate probabilities (``leaf_min=0`` disables);
    ancestors shallower than ``min_depth`` (roots are depth 1) are never answered."""
    best = int(np.argmax(probs))
    position, confidence = index.positions[best], float(probs[best])
    if confidence >= leaf_min:
        return Choice(position, confidence, False, position, confidence)
    for ancestor in index.view.ancestors(position)[1:]:
        if index.view.depths[ancestor] < min_depth:
            break
        summed = subtree_probability(probs, index, ancestor)
        if summed >= branch_min:
            return Choice(ancestor, summed, True, position, confidence)
    return Choice(position, confidence, False, position, confidence)


def back_off_warning(choice: Choice, index: CategoryIndex) -> str:
    """The plain-words note on a backed-off row."""
    view = index.view
    return (
        f"backed off to the broader category {view.paths[choice.position]!r} "
        f"(summed probability {choice.confidence:.2f}): the best leaf "
        f"{view.paths[choice.leaf_position]!r} had only {choice.leaf_confidence:.2f}"
    )
