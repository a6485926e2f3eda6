"""Image-title conflicts: the photo says one branch of the tree, the text another (a wrong or
swapped photo).

Each product gets an image-only and a text-only category: similarity-weighted votes of its
nearest labelled neighbours by image and by text (a reference index with categories when one
is given, else the feed's own categories, leaving the product out). A finding needs both
votes confident and their categories apart in the tree (a sibling or further); its score is
the smaller confidence times the relation's weight.
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

THRESHOLD = 0.5


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


def conflict_scores(ctx: AuditContext) -> list[tuple[float, tuple, tuple, str]]:
    """``(score, image vote, text vote, relation)`` per product."""
    if "image" not in ctx.vectors or "text" not in ctx.vectors:
        return [(0.0, (None, 0.0, {}), (None, 0.0, {}), "unknown")] * len(ctx.products)
    if ctx.predictor is not None:  # a checkpoint's towers: what each input alone says
        image_votes, text_votes = by_input_votes(ctx)
    else:
        image_votes, text_votes = modality_votes(ctx, "image"), modality_votes(ctx, "text")
    out = []
    for image_vote, text_vote in zip(image_votes, text_votes, strict=True):
        link = relation(image_vote[0], text_vote[0])
        score = min(image_vote[1], text_vote[1]) * RELATION_WEIGHT[link]
        out.append((score, image_vote, text_vote, link))
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
