"""Scores of a product against every candidate category, using the whole path and the tree.

For a product vector ``t`` (unit length; see :func:`text_vectors`) and a candidate ``c``:

    score(c) = w_path cos(t, path(c)) + w_name cos(t, name(c))
             + w_ancestors mean_{a above c} cos(t, name(a))
             + w_overlap overlap(c) + w_phrase match(c) - w_hub hub(c)

``overlap`` and ``match`` are the lexical signals of :mod:`~multimodal_cat.zero_shot.lexical`
(read on the title's head phrase, brand removed), so a product lands in the branch whose
words it uses. ``hub(c)`` (cross-domain similarity local scaling, CSLS) is the mean of
``c``'s ``hub_k`` best cosines over a reference set of product vectors: a category near
everything is pulled back. The embedding terms are linear in ``t``, so they fold into one
matrix per tree (:func:`category_matrix`), and a batch costs one matrix product.

Example:
    >>> w = ScoreWeights()
    >>> (w.path, w.name, w.overlap) == (DEFAULT_WEIGHTS["path"], DEFAULT_WEIGHTS["name"], DEFAULT_WEIGHTS["overlap"])
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from multimodal_cat.encoders._arrays import l2_normalize
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.zero_shot.lexical import PathOverlap, PhraseIndex
from multimodal_cat.zero_shot.product_text import ProductText

if TYPE_CHECKING:
    from multimodal_cat.align.embeddings import TreeView


@dataclass(frozen=True)
class ScoreWeights:
    """Weights of the score terms (defaults chosen on non-test rows; see the benchmarks)."""

    path: float = 0.5  # cos(text, full path)
    name: float = 0.75  # cos(text, category name)
    ancestors: float = 0.5  # mean cos(text, ancestor names); a root uses its own name
    overlap: float = 0.2  # IDF share of the head phrase's tree words found in the path
    phrase: float = 0.1  # a category name occurs in the head phrase (longest wins)
    head: float = 0.25  # share of the head phrase + head noun in the product vector
    seller: float = 0.25  # share of the seller's own category text (when there is one)
    hub: float = 0.0  # CSLS hub penalty; measured not to help (benchmarks/zero_shot_general.py)
    hub_k: int = 10  # neighbours that define a category's hubness

    @classmethod
    def from_dict(cls, values: dict[str, float] | None) -> ScoreWeights:
        """Defaults overridden by ``values``; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(values or {}) - known
        if unknown:
            raise InvalidArgumentError(f"expected weights among {sorted(known)}; got {sorted(unknown)}")
        return cls(**{**asdict(cls()), **(values or {})})

    def embedding_terms(self) -> tuple[float, float, float]:
        """The weights that shape :func:`category_matrix` (path, name, ancestors)."""
        return self.path, self.name, self.ancestors


DEFAULT_WEIGHTS: dict[str, float] = asdict(ScoreWeights())


def category_matrix(view: TreeView, weights: ScoreWeights) -> np.ndarray:
    """The embedding side of the score for every node of ``view`` (n_nodes, dim), float32."""
    name_emb = np.asarray(view.name_emb, dtype=np.float32)
    path_emb = np.asarray(view.path_emb, dtype=np.float32)
    above = np.empty_like(name_emb)
    for position in range(len(view)):
        chain = view.ancestors(position)[1:] or [position]
        above[position] = name_emb[chain].mean(axis=0)
    w_path, w_name, w_anc = weights.embedding_terms()
    return (w_path * path_emb + w_name * name_emb + w_anc * above).astype(np.float32)


def text_vectors(
    texts: Sequence[ProductText], embed, weights: ScoreWeights, title_weight: float = 0.5
) -> np.ndarray:
    """Unit product vectors: the title's, mixed with its head phrase + noun, description and
    seller category where they exist (``embed`` maps a list of strings to vectors).

    ``title_weight`` is the title's share against title + description (when there is one).
    """
    title = l2_normalize(embed([t.title for t in texts]))
    out = title.copy()
    rows = [i for i, t in enumerate(texts) if t.full != t.title]
    if rows and title_weight < 1.0:
        full = l2_normalize(embed([texts[i].full for i in rows]))
        out[rows] = l2_normalize(title_weight * title[rows] + (1.0 - title_weight) * full)
    if weights.head:
        heads = l2_normalize(embed([t.head for t in texts]) + embed([t.noun for t in texts]))
        out = l2_normalize((1.0 - weights.head) * out + weights.head * heads)
    rows = [i for i, t in enumerate(texts) if t.seller_category]
    if rows and weights.seller:
        seller = l2_normalize(embed([texts[i].seller_category for i in rows]))
        out[rows] = l2_normalize((1.0 - weights.seller) * out[rows] + weights.seller * seller)
    return out


def hub_scores(cosines: np.ndarray, k: int) -> np.ndarray:
    """CSLS hubness of each column: the mean of its ``k`` highest values over the rows."""
    k = max(1, min(k, cosines.shape[0]))
    return np.sort(cosines, axis=0)[-k:].mean(axis=0)


class CategoryIndex:
    """The candidate categories of a tree, with everything their scores need.

    Args:
        view: the tree as a :class:`~multimodal_cat.align.embeddings.TreeView`.
        candidates: ``"leaves"`` or ``"all"`` nodes.
        matrix: :func:`category_matrix` of ``view`` (all nodes), or ``None`` without encoder.

    Attributes:
        positions: view position of each candidate column.
        below: for each view position, the candidate columns in its subtree (itself included).
    """

    def __init__(self, view: TreeView, candidates: str, matrix: np.ndarray | None) -> None:
        self.view = view
        self.positions = [
            i for i in range(len(view)) if candidates == "all" or not view.children[i]
        ]
        self.ids = [view.ids[i] for i in self.positions]
        self.paths = [view.paths[i] for i in self.positions]
        self.matrix = None if matrix is None else matrix[self.positions]
        self.cosine_scale = 1.0  # the encoder's cosines onto MiniLM's scale (see .scale)
        self.phrases = PhraseIndex([view.names[i] for i in self.positions])
        self.overlap = PathOverlap(self.paths)
        column_of = {p: c for c, p in enumerate(self.positions)}
        below: list[list[int]] = [[] for _ in range(len(view))]
        for position in self.positions:
            for ancestor in view.ancestors(position):
                below[ancestor].append(column_of[position])
        self.below = [np.asarray(b, dtype=np.int64) for b in below]

    def __len__(self) -> int:
        return len(self.positions)

    def lexical(self, texts: Sequence[ProductText], weights: ScoreWeights) -> np.ndarray:
        """The lexical part of the scores (len(texts), len(self))."""
        out = np.zeros((len(texts), len(self)), dtype=np.float32)
        if weights.overlap:
            out += weights.overlap * self.overlap.scores([t.lexical for t in texts])
        if weights.phrase:
            out += weights.phrase * self.phrases.matches([t.lexical for t in texts])
        return out

    def scores(
        self,
        texts: Sequence[ProductText],
        vectors: np.ndarray | None,
        weights: ScoreWeights,
        reference: np.ndarray | None = None,
    ) -> np.ndarray:
        """Scores (len(texts), len(self)); ``vectors`` are the products' unit vectors.

        ``reference`` (unit product vectors, default ``vectors``) sets the CSLS hub penalty.
        """
        out = self.lexical(texts, weights)
        if vectors is not None and self.matrix is not None:
            cos = self.cosine_scale * (vectors @ self.matrix.T)
            out += cos
            if weights.hub:
                ref = vectors if reference is None else reference
                out -= weights.hub * hub_scores(self.cosine_scale * (ref @ self.matrix.T), weights.hub_k)
        return out
