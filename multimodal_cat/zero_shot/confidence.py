"""A confidence that means the same on any tree: the chance that the answer is right.

A softmax at one fitted temperature is honest only on the tree it was fitted on: its
probabilities depend on how many candidates a tree has and how alike their texts are (on the
GS1 tree of web-shop offers, 20% of the answers given at 0.9 were wrong). The answer's
confidence is therefore a small logistic model of the chance that the answer is right, read
from features that mean the same on every tree:

* ``logit_p``: the answer's softmax probability (summed over its subtree when it backed off),
* ``margin``: the gap between the best and the second-best score (in score units),
* ``z_top``: how far the best score stands above all the tree's scores (standard deviations),
* ``root_mass``: the probability of the answer's top-level branch (logit),
* ``log_candidates``: the log of the number of candidates,
* ``agree``: 1 when the embedding alone and the full score pick the same leaf.

A tree the engine knows less well gives lower scores everywhere, which no per-answer feature
shows. So, with no label, products are calibrated on their own score distribution: the share
of their answers above a confidence fitted on the dev rows (average thresholded confidence,
ATC) estimates their accuracy, and one logit shift brings their mean confidence to that
estimate (:meth:`ConfidenceModel.feed_shift`). The fewer the products, the more the shift
leans on a cautious prior (:meth:`ConfidenceModel.shift_for`): a lone product of an unknown
tree is not trusted as if the tree were an easy one. Which products: by default one call's
own (a list given to ``predict``), so a call answers the same whatever was scored before it;
the feed job fixes one :class:`FeedShift` for the whole feed from a sample spread over it
(``ZeroShotCategorizer.fit_feed_shift``), so its batches of 64 do not each lean on the prior
(measured: ``benchmarks/results/zero_shot_general.json``, key ``feed_level_shift``).

The weights were fitted (logistic regression) on the dev rows of Flipkart and fashion, and
checked on MWPD's GS1 tree, which no setting was chosen on
(``benchmarks/zero_shot_general.py``, key ``confidence_model``). A team with reviewed answers
refines it per tree with :func:`multimodal_cat.calibration.calibrate_from_reviews`.

Example:
    >>> model = ConfidenceModel(weights=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0), bias=0.0)
    >>> feats = np.array([[0.0, 0.1, 2.0, 1.0, 5.0, 1.0]])
    >>> [round(float(x), 2) for x in model(feats)]
    [0.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEED_PRIOR = 50  # weight, in products, of the prior shift against the feed's own estimate
FEATURES = ("logit_p", "margin", "z_top", "root_mass", "log_candidates", "agree")
_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), stable for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


@dataclass(frozen=True)
class ConfidenceModel:
    """A logistic model of P(answer is right | features), weights in :data:`FEATURES` order.

    ``feed_threshold`` is the confidence above which the share of the dev rows equals their
    accuracy (average thresholded confidence, ATC): the share of a new feed's rows above it
    estimates that feed's accuracy with no label (:meth:`feed_shift`). ``prior_shift`` is the
    shift assumed before a feed has shown anything.
    """

    weights: tuple[float, ...]
    bias: float
    feed_threshold: float = 0.5
    prior_shift: float = 0.0

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The confidence of each row of ``features`` (n, len(FEATURES)), before any shift."""
        return sigmoid(np.asarray(features, dtype=np.float64) @ np.asarray(self.weights) + self.bias)

    def estimated_accuracy(self, confidence: np.ndarray) -> float:
        """The feed's accuracy estimated from its own confidences (ATC, smoothed)."""
        confidence = np.asarray(confidence, dtype=np.float64)
        return float(((confidence > self.feed_threshold).sum() + 0.5) / (len(confidence) + 1.0))

    def shift_for(self, seen: np.ndarray) -> float:
        """The shift for products (one call's) whose confidences are ``seen``: their own
        (:meth:`feed_shift`) weighed against :attr:`prior_shift` as if the prior were
        :data:`FEED_PRIOR` products."""
        n = len(seen)
        if not n:
            return self.prior_shift
        weight = n / (n + FEED_PRIOR)
        return weight * self.feed_shift(seen) + (1.0 - weight) * self.prior_shift

    def feed_shift(self, confidence: np.ndarray) -> float:
        """The logit shift that makes the feed's mean confidence equal its estimated accuracy
        (bisection; the same answer every run)."""
        z = logit(confidence)
        target = self.estimated_accuracy(confidence)
        low, high = -20.0, 20.0
        for _ in range(60):
            mid = (low + high) / 2.0
            if sigmoid(z + mid).mean() < target:
                low = mid
            else:
                high = mid
        return (low + high) / 2.0


@dataclass(frozen=True)
class FeedShift:
    """One confidence shift fixed for a whole feed, and how many products it rests on.

    Example:
        >>> str(FeedShift(-0.4123, 1000))
        'confidence shift -0.412, fitted on 1,000 products of the feed'
    """

    shift: float
    products: int

    @classmethod
    def fit(cls, confidence: np.ndarray, model: ConfidenceModel | None = None) -> FeedShift:
        """The shift of products whose confidences (before any shift) are ``confidence``
        (:meth:`ConfidenceModel.shift_for`, so a small sample still leans on the prior)."""
        model = model or DEFAULT_CONFIDENCE
        return cls(float(model.shift_for(np.asarray(confidence))), len(confidence))

    def to_dict(self) -> dict[str, float | int]:
        """``{"shift": ..., "products": ...}`` (a job's checkpoint; exact through JSON)."""
        return {"shift": self.shift, "products": self.products}

    @classmethod
    def from_dict(cls, state: dict[str, float | int]) -> FeedShift:
        """The inverse of :meth:`to_dict`."""
        return cls(float(state["shift"]), int(state["products"]))

    def __str__(self) -> str:
        return f"confidence shift {self.shift:.3f}, fitted on {self.products:,} products of the feed"


def shifted(confidence: np.ndarray, shift: float) -> np.ndarray:
    """``sigmoid(logit(confidence) + shift)``."""
    return sigmoid(logit(confidence) + shift)


def root_columns(index) -> np.ndarray:
    """The top-level branch (a view position) of each candidate column of ``index``."""
    view = index.view
    return np.array([view.ancestors(p)[-1] for p in index.positions])


def confidence_features(
    scores: np.ndarray,
    probs: np.ndarray,
    answer_probability: np.ndarray,
    roots: np.ndarray,
    embedding_best: np.ndarray | None = None,
) -> np.ndarray:
    """The :data:`FEATURES` of each row (n, 6).

    Args:
        scores: raw scores (n, candidates).
        probs: their softmax probabilities.
        answer_probability: the probability of each row's answer (leaf, or summed branch).
        roots: :func:`root_columns` of the candidates.
        embedding_best: the best column by the embedding term alone (``None``: agreement 1).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, candidates = scores.shape
    best = scores.argmax(axis=1)
    rows = np.arange(n)
    top2 = -np.partition(-scores, min(1, candidates - 1), axis=1)[:, : min(2, candidates)]
    margin = top2[:, 0] - top2[:, -1]
    spread = scores.std(axis=1) + _EPS
    z_top = (top2[:, 0] - scores.mean(axis=1)) / spread
    same_root = roots[None, :] == roots[best][:, None]
    root_mass = (np.asarray(probs) * same_root).sum(axis=1)
    agree = np.ones(n) if embedding_best is None else (np.asarray(embedding_best) == best)
    return np.column_stack(
        [
            logit(answer_probability),
            margin,
            z_top,
            logit(root_mass),
            np.full(n, np.log(max(candidates, 1))),
            agree.astype(np.float64),
        ]
    )[rows]


# Fitted on the dev rows of Flipkart and fashion (benchmarks/zero_shot_general_confidence.py).
# The other features were measured not to transfer better (key ``confidence_model``). The
# prior shift is the more cautious of the two dev domains' own shifts (Flipkart dev's, -0.537; fashion
# dev's is positive).
DEFAULT_CONFIDENCE = ConfidenceModel(
    weights=(0.8556, 0.0, 0.0, 0.0, 0.0, 0.0), bias=0.6246, feed_threshold=0.627, prior_shift=-0.54
)
