"""Mismatched categories: the category a product is listed under against the one its
neighbours (or a predictor) say, tree-aware.

The listed category is the curated one (``category=``) or else the seller's own, mapped into
the curated tree with a mapping (a published :class:`~multimodal_cat.mapping.Mapping`, an
inferred one from ``align/``, or a plain dict). The prediction is a similarity-weighted vote
of the product's nearest labelled neighbours (fused vectors; a reference index when one is
given, else the feed itself, leaving the product out), or a predictor's top category. An
ancestor or descendant is not an error; a sibling weighs less than another branch, another
branch less than another root. Score: (1 - the vote's share of categories compatible with the
listed one) x the weight of the relation between the listed and the predicted category.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multimodal_cat.catalog.audits.context import (
    RELATION_WEIGHT,
    AuditContext,
    finding,
    relation,
    vote,
)
from multimodal_cat.catalog.index import fuse

THRESHOLD = 0.5  # a finding from this score up


def claimed(ctx: AuditContext) -> list[str | None]:
    """The category each product is listed under: curated, else the seller's, mapped."""
    return [c or s for c, s in zip(ctx.categories, ctx.seller_categories, strict=True)]


def fused_vectors(ctx: AuditContext) -> np.ndarray:
    present = [ctx.vectors[m] for m in ("text", "image") if m in ctx.vectors]
    if len(present) == 1:
        return present[0]
    return fuse(*present, **({"text_weight": ctx.reference.text_weight} if ctx.reference else {}))


def votes(ctx: AuditContext, k: int = 10) -> list[tuple[str | None, float, dict[str, float]]]:
    """Each product's neighbour vote: from the reference index, else leave-one-out in the feed."""
    if ctx.reference is not None and len(ctx.reference):
        kind = "fused" if len(ctx.reference.encoders) == 2 else next(iter(ctx.reference.encoders))
        queries = fused_vectors(ctx) if kind == "fused" else ctx.vectors[kind]
        labels = [r.get("category") for r in ctx.reference.records]
        out = []
        for hits in ctx.reference.search(queries, kind=kind, k=k):
            rows = np.array([ctx.reference.row_of(i) for i, _ in hits], np.int64)
            out.append(vote(rows, np.array([s for _, s in hits]), labels))
        return out
    modality = "image" if "text" not in ctx.vectors else "text"
    rows, sims = ctx.neighbours(modality, k)
    labels = claimed(ctx)
    return [vote(rows[i], sims[i], labels) for i in range(len(ctx.products))]


def mismatch_scores(ctx: AuditContext) -> list[tuple[float, str | None, float, str]]:
    """``(score, predicted, confidence, relation)`` per product (score 0 without a category)."""
    listed = claimed(ctx)
    if ctx.predictor is not None:
        predictions = ctx.predictor.predict(ctx.products)
        predicted = [
            (p.category_path, p.confidence, {p.category_path: p.confidence})
            if p.status != "error" else (None, 0.0, {})
            for p in predictions
        ]
    else:
        predicted = votes(ctx)
    out = []
    for category, (top, confidence, shares) in zip(listed, predicted, strict=True):
        link = relation(category, top)
        compatible = sum(
            share for label, share in shares.items()
            if relation(category, label) in ("same", "ancestor")
        )
        score = (1.0 - compatible) * RELATION_WEIGHT[link] if top else 0.0
        out.append((score, top, confidence, link))
    return out


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """A finding per product whose listed category the evidence contradicts."""
    listed = claimed(ctx)
    threshold = ctx.options.get("category_threshold", THRESHOLD)
    out = []
    for row, (score, top, confidence, link) in enumerate(mismatch_scores(ctx)):
        if score < threshold:
            continue
        product = ctx.products[row]
        evidence = {
            "listed": listed[row], "seller_category": product.seller_category or None,
            "predicted": top, "confidence": round(confidence, 4), "relation": link,
        }
        text = f"listed under {listed[row]!r}, looks like {top!r} ({link})"
        out.append(finding("categories", text, score, [row], ctx, evidence))
    return out
