"""Image-title conflicts: the photo says one category, the text another (a wrong or swapped
photo).

Each product gets an image-only and a text-only class distribution: the probabilities of a
linear probe (logistic regression) on the image vectors alone and on the text vectors alone,
fitted on a reference index's products and categories when one is given, else on the feed's
own categories out of sample (cross-validated, so no product is scored by a probe that saw
it; feeds up to :data:`PROBE_MAX_ROWS` labelled rows, larger ones use similarity-weighted
votes of the nearest labelled neighbours, mixed with the label shares). The probes are
:mod:`~multimodal_cat.catalog.probes`' (a reference index's own kind probes, fitted once).

The score is the probability that photo and title show different categories, from the two
distributions and the label shares (``prior``): if both showed one category ``c``, the pair
would be ``agreement = sum_c p_image(c) p_text(c) / prior(c)`` times likelier than two
unrelated inputs; ``score = 1 / (1 + agreement)`` (even prior odds). A confident T-shirt photo
under a shirt's title scores near 1 like a shoe photo under it: siblings are told apart when
the photo is clear, and an unsure photo (spread over shirts and T-shirts) is left alone. A
finding from :data:`THRESHOLD` up; the evidence names the relation of the two categories in
the tree. With a checkpoint (``predictor=``), only the image-only and text-only top categories
are known: the score is then their tree disagreement (:func:`disagreement`), a finding from
:data:`TREE_THRESHOLD` up. Products without a photo or without a text are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from multimodal_cat.catalog.audits.categories import claimed
from multimodal_cat.catalog.audits.context import (
    RELATION_WEIGHT,
    AuditContext,
    finding,
    relation,
    vote,
)
from multimodal_cat.catalog.probes import PROBE_MAX_ROWS, class_shares, probe_inputs, probe_model

THRESHOLD = 0.86  # swap probability; chosen on fashion validation swaps (benchmarks/catalog_qc.py)
TREE_THRESHOLD = 0.7  # tree disagreement of a checkpoint's image-only and text-only categories
NEIGHBOUR_PRIOR = 0.1  # weight of the label shares mixed into neighbour votes
FOLDS = 5


@dataclass
class ClassVotes:
    """One modality's class distribution per product.

    Attributes:
        classes: category paths (columns).
        probabilities: (products, classes); zero rows for products without the modality.
        prior: each class's share of the labels the votes were learned from.
    """

    classes: list[str]
    probabilities: np.ndarray
    prior: np.ndarray

    def top(self, row: int) -> tuple[str | None, float]:
        p = self.probabilities[row]
        if not p.any():
            return None, 0.0
        best = int(np.argmax(p))
        return self.classes[best], float(p[best])


def _cross_validated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(max(2, min(FOLDS, np.bincount(y).min())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    return cross_val_predict(probe_model(), probe_inputs(x), y, cv=splitter,
                             method="predict_proba")


def probe_votes(ctx: AuditContext, modality: str) -> ClassVotes | None:
    """Each product's class distribution from a linear probe on its ``modality`` vector: the
    reference index's kind probe (fitted once per index, :meth:`CatalogIndex.learn_kinds`),
    else the feed's own, cross-validated (None when there are too few labels, or a feed too
    large to cross-validate)."""
    present = ctx.has(modality)
    ref = ctx.reference
    if ref is not None and len(ref) and modality in ref.encoders:
        if modality not in ref.kind_probes:
            ref.learn_kinds()
        probe = ref.kind_probes.get(modality)
        if probe is None:
            return None
        probabilities = np.zeros((len(ctx.products), len(probe.classes)))
        if present.any():
            probabilities[present] = probe.predict_proba(ctx.vectors[modality][present])
        return ClassVotes(probe.classes, probabilities, probe.prior)
    labels = claimed(ctx)
    rows = [i for i, label in enumerate(labels) if label and present[i]]
    counts: dict[str, int] = {}
    for i in rows:
        counts[labels[i]] = counts.get(labels[i], 0) + 1
    rows = [i for i in rows if counts[labels[i]] >= 2]
    classes = sorted({labels[i] for i in rows})
    if len(classes) < 2 or len(rows) > PROBE_MAX_ROWS:
        return None
    code = {name: c for c, name in enumerate(classes)}
    probabilities = np.zeros((len(ctx.products), len(classes)))
    probabilities[rows] = _cross_validated(ctx.vectors[modality][rows],
                                           np.array([code[labels[i]] for i in rows]))
    return ClassVotes(classes, probabilities, class_shares([labels[i] for i in rows], classes))


def modality_votes(ctx: AuditContext, modality: str, k: int = 10) -> ClassVotes:
    """Each product's class distribution from its ``modality`` neighbours' labels (weighted
    by similarity), mixed with the label shares (:data:`NEIGHBOUR_PRIOR`)."""
    ref = ctx.reference
    if ref is not None and len(ref) and modality in ref.encoders:
        labels = [r.get("category") for r in ref.records]
        found = []
        for query, present in zip(ctx.vectors[modality], ctx.has(modality), strict=True):
            if not present:
                found.append((None, 0.0, {}))
                continue
            hits = ref.search(query[None], kind=modality, k=k)[0]
            rows = np.array([ref.row_of(i) for i, _ in hits], np.int64)
            found.append(vote(rows, np.array([s for _, s in hits]), labels))
    else:
        rows, sims = ctx.neighbours(modality, k)
        labels = claimed(ctx)
        found = [vote(rows[i], sims[i], labels) for i in range(len(ctx.products))]
    known = [label for label in labels if label]
    classes = sorted(set(known))
    prior = class_shares(known, classes) if classes else np.zeros(0)
    code = {name: c for c, name in enumerate(classes)}
    probabilities = np.zeros((len(ctx.products), len(classes)))
    for row, (_, _, shares) in enumerate(found):
        if shares:
            for name, share in shares.items():
                probabilities[row, code[name]] = share
            probabilities[row] = (1 - NEIGHBOUR_PRIOR) * probabilities[row] + NEIGHBOUR_PRIOR * prior
    return ClassVotes(classes, probabilities, prior)


def swap_probability(image: np.ndarray, text: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The probability that photo and title show different categories (even prior odds),
    from the image-only and text-only class distributions (rows; a zero row: not checked,
    probability 0) and the classes' prior shares.

    Example:
        >>> prior = np.array([0.5, 0.5])
        >>> swap_probability(np.array([[0.99, 0.01], [0.99, 0.01]]),
        ...                  np.array([[0.01, 0.99], [0.99, 0.01]]), prior).round(3)
        array([0.962, 0.338])
    """
    agreement = (image * text / np.where(prior > 0, prior, 1.0)).sum(axis=1)
    checked = image.any(axis=1) & text.any(axis=1)
    return np.where(checked, 1.0 / (1.0 + agreement), 0.0)


def by_input_votes(ctx: AuditContext) -> tuple[list[tuple], list[tuple]]:
    """Image-only and text-only categories from the predictor's ``by_input``."""
    image_votes, text_votes = [], []
    for prediction in ctx.predictor.predict(ctx.products):
        for name, into in (("image", image_votes), ("text", text_votes)):
            score = prediction.by_input.get(name)
            into.append((score.path, score.score, {score.path: score.score}) if score else
                        (None, 0.0, {}))
    return image_votes, text_votes


def disagreement(image_shares: dict[str, float], text_shares: dict[str, float],
                 weight_of: dict[tuple[str, str], float] | None = None) -> float:
    """Expected relation weight between a category drawn from each vote.

    Example:
        >>> disagreement({"A > x": 1.0}, {"B > y": 1.0}), disagreement({"A > x": 1.0}, {"A > x": 1.0})
        (1.0, 0.0)
    """
    weight_of = {} if weight_of is None else weight_of
    total = 0.0
    for a, share_a in image_shares.items():
        for b, share_b in text_shares.items():
            if (a, b) not in weight_of:
                weight_of[(a, b)] = RELATION_WEIGHT[relation(a, b)]
            total += share_a * share_b * weight_of[(a, b)]
    return total


def _tree_scores(ctx: AuditContext) -> list[tuple[float, tuple, tuple, str]]:
    image_votes, text_votes = by_input_votes(ctx)
    weight_of: dict[tuple[str, str], float] = {}
    return [(disagreement(i[2], t[2], weight_of), i[:2], t[:2], relation(i[0], t[0]))
            for i, t in zip(image_votes, text_votes, strict=True)]


def _aligned(image: ClassVotes, text: ClassVotes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both distributions over the image votes' classes (text classes it lacks dropped)."""
    if image.classes == text.classes:
        return image.probabilities, text.probabilities, image.prior
    column = {name: c for c, name in enumerate(text.classes)}
    take = np.array([column.get(name, -1) for name in image.classes])
    text_p = np.where(take >= 0, text.probabilities[:, np.maximum(take, 0)], 0.0)
    return image.probabilities, text_p, image.prior


def conflict_scores(ctx: AuditContext) -> list[tuple[float, tuple, tuple, str]]:
    """``(score, (image category, confidence), (text category, confidence), relation of the
    two)`` per product."""
    if "image" not in ctx.vectors or "text" not in ctx.vectors:
        return [(0.0, (None, 0.0), (None, 0.0), "unknown")] * len(ctx.products)
    if ctx.predictor is not None:  # a checkpoint's towers: what each input alone says
        return _tree_scores(ctx)
    image, text = (probe_votes(ctx, m) or modality_votes(ctx, m) for m in ("image", "text"))
    if not image.classes or not text.classes:
        return [(0.0, (None, 0.0), (None, 0.0), "unknown")] * len(ctx.products)
    scores = swap_probability(*_aligned(image, text))
    out = []
    for row, score in enumerate(scores):
        image_top, text_top = image.top(row), text.top(row)
        out.append((float(score), image_top, text_top, relation(image_top[0], text_top[0])))
    return out


def is_conflict(score: float, link: str, threshold: float) -> bool:
    """A finding: the score reaches the threshold and the two top categories are neither one
    category nor an ancestor and its descendant."""
    return score >= threshold and link not in ("same", "ancestor", "unknown")


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """A finding per product whose photo and text point to different categories."""
    default = TREE_THRESHOLD if ctx.predictor is not None else THRESHOLD
    threshold = ctx.options.get("image_conflict_threshold", default)
    out = []
    for row, (score, image_top, text_top, link) in enumerate(conflict_scores(ctx)):
        if not is_conflict(score, link, threshold):
            continue
        evidence = {
            "image_says": image_top[0], "image_confidence": round(image_top[1], 4),
            "text_says": text_top[0], "text_confidence": round(text_top[1], 4),
            "relation": link,
        }
        text = f"photo looks like {image_top[0]!r}, title like {text_top[0]!r}"
        out.append(finding("images", text, score, [row], ctx, evidence))
    return out
