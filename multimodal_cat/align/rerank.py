"""The re-ranker: a linear score over candidate features, softmax over each candidate set.

Learning is a conditional logit (multinomial logistic regression where each source category
chooses among its own candidates), fitted with L-BFGS on groups built from known rules.

Without known rules the aligner uses :data:`DEFAULT_WEIGHTS`, or :data:`SEMANTIC_WEIGHTS` when
the two trees share little wording. Both were fitted on a different taxonomy pair, Shopify's
legacy 2022-02 tree -> Shopify 2025-01 (its published ``to_shopify.yml``), so no Shopify ->
Google rule and no translated tree was used; see
``benchmarks/mapping_benchmark.py --fit-default-weights``.

Example:
    >>> import numpy as np
    >>> ranker = ReRanker()
    >>> probs = ranker.probabilities(np.zeros((3, len(FEATURE_NAMES)), dtype=np.float32))
    >>> [round(float(p), 3) for p in probs]
    [0.333, 0.333, 0.333]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from multimodal_cat.align.candidates import FEATURE_NAMES

# Fitted on shopify/2022-02 -> shopify/2025-01-unstable (5,595 rules) with MiniLM embeddings;
# reference (known-rule) features are set to zero: at inference without known rules they are 0.
DEFAULT_WEIGHTS: dict[str, float] = {
    "cos_path": 0.6385,
    "cos_name": 0.7904,
    "name_eq": 1.0482,
    "name_jaccard": 0.7683,
    "path_jaccard": 0.9936,
    "is_anchor": 1.5,
    "below_anchor": 0.5673,
    "child_of_anchor": 1.156,
    "depth_vs_anchor": -0.5995,
    "lexical_prefix": 1.45,
    "best_name": 1.1185,
    "best_path": 1.348,
    "no_anchor": 0.0,
    "above_anchor": -0.2643,
    "path_eq": 0.7961,
    "name_in_source": 0.3342,
    "source_in_name": 1.2093,
    "head_eq": 0.9886,
    "ref_name": 0.0,
    "ref_path": 0.0,
    "depth": -0.0868,
    "ref_path_high": 0.0,
    "ref_name_high": 0.0,
}


# The same pair and encoder, fitted with the features that need shared words held at zero
# (LEXICAL_FEATURES): the weights for trees that share little wording, e.g. two languages.
SEMANTIC_WEIGHTS: dict[str, float] = {
    "cos_path": 1.3948,
    "cos_name": 2.366,
    "is_anchor": 2.2269,
    "below_anchor": 0.8497,
    "child_of_anchor": 1.6042,
    "depth_vs_anchor": -0.9736,
    "best_name": 2.8743,
    "best_path": 2.8633,
    "above_anchor": -0.2219,
    "depth": -0.1447,
}


@dataclass
class CandidateGroup:
    """One source category's candidates: features (n, d) and the index of the right one."""

    features: np.ndarray
    label: int
    weight: float = 1.0


@dataclass
class ReRanker:
    """Linear candidate scorer.

    Attributes:
        weights: one weight per name in :data:`FEATURE_NAMES` (missing names count 0).
        temperature: softmax temperature used for confidences.
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    temperature: float = 1.0

    def vector(self) -> np.ndarray:
        """The weights as an array ordered like :data:`FEATURE_NAMES`."""
        unknown = set(self.weights) - set(FEATURE_NAMES)
        if unknown:
            raise ValueError(
                f"expected weights for features among {FEATURE_NAMES}; got unknown {sorted(unknown)}"
            )
        return np.array([self.weights.get(n, 0.0) for n in FEATURE_NAMES], dtype=np.float32)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Linear scores of candidate rows."""
        return features @ self.vector()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax of the scores over the candidate set (sums to 1)."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        scores = self.scores(features) / self.temperature
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()

    @classmethod
    def fit(
        cls,
        groups: Sequence[CandidateGroup],
        *,
        l2: float = 1e-3,
        max_iter: int = 300,
        exclude: Sequence[str] = (),
    ) -> ReRanker:
        """Fit the weights by maximum likelihood of the right candidate in each group.

        ``exclude`` names features held at zero (their weights come out 0), e.g.
        :data:`~multimodal_cat.align.candidates.LEXICAL_FEATURES` for :data:`SEMANTIC_WEIGHTS`.

        Raises:
            ValueError: no group to learn from.
        """
        import torch

        if not groups:
            raise ValueError("expected at least one candidate group with a known answer; got none")
        size = max(len(g.features) for g in groups)
        dim = len(FEATURE_NAMES)
        feats = torch.zeros(len(groups), size, dim)
        mask = torch.full((len(groups), size), -1e9)
        labels = torch.tensor([g.label for g in groups], dtype=torch.long)
        weights = torch.tensor([g.weight for g in groups], dtype=torch.float32)
        for i, group in enumerate(groups):
            feats[i, : len(group.features)] = torch.from_numpy(group.features)
            mask[i, : len(group.features)] = 0.0
        feats[:, :, [FEATURE_NAMES.index(name) for name in exclude]] = 0.0
        w = torch.zeros(dim, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = feats @ w + mask
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            loss = (loss * weights).sum() / weights.sum() + l2 * (w * w).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        fitted = w.detach().numpy()
        return cls({n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, fitted, strict=True)})
