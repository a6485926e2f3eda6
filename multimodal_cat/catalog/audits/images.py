"""Image-title conflicts: the photo says one branch of the tree, the text another (a wrong or
swapped photo).

Each product gets an image-only and a text-only category vote: the class probabilities of a
linear probe (logistic regression) on the image vectors alone and on the text vectors alone,
fitted on a reference index's products and categories when one is given, else on the feed's
own categories out of sample (cross-validated, so no product is scored by a probe that saw
it; feeds up to :data:`PROBE_MAX_ROWS` labelled rows, larger ones use similarity-weighted
votes of the nearest labelled neighbours); or the checkpoint's image-only and text-only heads.
On fashion the image probe ranks a swapped photo far better than neighbour votes (DINOv2
neighbours share the article type only 63% of the time). The score is the expected disagreement of the
two votes in the tree: the sum over category pairs of (image share x text share x the weight
of the pair's relation), so two votes spread over siblings of one branch (T-shirts, tops,
shirts) agree, and a photo whose neighbours sit in another branch than the title's scores
near that branch's weight (1 for another root). A finding from :data:`THRESHOLD` up.
"""

from __future__ import annotations

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
from multimodal_cat.catalog.audits.labels import out_of_sample

THRESHOLD = 0.7  # chosen on the fashion validation split (benchmarks/catalog_qc.py)
PROBE_MAX_ROWS = 20_000  # a feed's own probe is cross-validated up to this many labelled rows
MIN_SHARE = 0.01  # probe probabilities below this are left out of a vote


def _shares(probabilities: np.ndarray, classes: list[str]) -> tuple:
    keep = np.flatnonzero(probabilities >= MIN_SHARE)
    shares = {classes[c]: float(probabilities[c]) for c in keep}
    top = int(np.argmax(probabilities))
    return classes[top], float(probabilities[top]), shares


def probe_votes(ctx: AuditContext, modality: str) -> list[tuple] | None:
    """Each product's category vote from a linear probe on its ``modality`` vector (None when
    there are too few labels, or a feed too large to cross-validate)."""
    from sklearn.linear_model import LogisticRegression

    present = ctx.has(modality)
    ref = ctx.reference
    if ref is not None and len(ref) and modality in ref.encoders:
        labels = [r.get("category") for r in ref.records]
        rows = [i for i, label in enumerate(labels) if label and ref.has[modality][i]]
        if len({labels[i] for i in rows}) < 2:
            return None
        model = LogisticRegression(C=10.0, max_iter=300)
        model.fit(ref.vectors[modality][rows], [labels[i] for i in rows])
        classes = list(model.classes_)
        probabilities = np.zeros((len(ctx.products), len(classes)))
        if present.any():
            probabilities[present] = model.predict_proba(ctx.vectors[modality][present])
    else:
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
        probabilities[rows] = out_of_sample(
            ctx.vectors[modality][rows], np.array([code[labels[i]] for i in rows]))
    return [_shares(p, classes) if present[i] and p.any() else (None, 0.0, {})
            for i, p in enumerate(probabilities)]


def modality_votes(ctx: AuditContext, modality: str, k: int = 10) -> list[tuple]:
    """Each product's category vote from its ``modality`` neighbours."""
    ref = ctx.reference
    if ref is not None and len(ref) and modality in ref.encoders:
        labels = [r.get("category") for r in ref.records]
        out = []
        for query, present in zip(ctx.vectors[modality], ctx.has(modality), strict=True):
            if not present:
                out.append((None, 0.0, {}))
                continue
            hits = ref.search(query[None], kind=modality, k=k)[0]
            rows = np.array([ref.row_of(i) for i, _ in hits], np.int64)
            out.append(vote(rows, np.array([s for _, s in hits]), labels))
        return out
    rows, sims = ctx.neighbours(modality, k)
    labels = claimed(ctx)
    return [vote(rows[i], sims[i], labels) for i in range(len(ctx.products))]


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


def conflict_scores(ctx: AuditContext) -> list[tuple[float, tuple, tuple, str]]:
    """``(score, image vote, text vote, relation of the two top categories)`` per product."""
    if "image" not in ctx.vectors or "text" not in ctx.vectors:
        return [(0.0, (None, 0.0, {}), (None, 0.0, {}), "unknown")] * len(ctx.products)
    if ctx.predictor is not None:  # a checkpoint's towers: what each input alone says
        image_votes, text_votes = by_input_votes(ctx)
    else:
        image_votes, text_votes = (probe_votes(ctx, m) or modality_votes(ctx, m)
                                   for m in ("image", "text"))
    weight_of: dict[tuple[str, str], float] = {}
    out = []
    for image_vote, text_vote in zip(image_votes, text_votes, strict=True):
        score = disagreement(image_vote[2], text_vote[2], weight_of)
        out.append((score, image_vote, text_vote, relation(image_vote[0], text_vote[0])))
    return out


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """A finding per product whose photo and text point to different branches."""
    threshold = ctx.options.get("image_conflict_threshold", THRESHOLD)
    out = []
    for row, (score, image_vote, text_vote, link) in enumerate(conflict_scores(ctx)):
        if score < threshold:
            continue
        evidence = {
            "image_says": image_vote[0], "image_confidence": round(image_vote[1], 4),
            "text_says": text_vote[0], "text_confidence": round(text_vote[1], 4),
            "relation": link,
        }
        text = f"photo looks like {image_vote[0]!r}, title like {text_vote[0]!r}"
        out.append(finding("images", text, score, [row], ctx, evidence))
    return out
