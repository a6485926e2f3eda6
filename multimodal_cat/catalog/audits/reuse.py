"""Reused photos: the same (near-identical) photo under different sellers, or under titles or
categories that disagree: a sign of copied or fraudulent listings.

Pairs come from the image neighbour lists (cosine >= ``reuse_threshold``); a pair is reported
when the sellers differ, or the titles are not near-identical (text cosine below
``TEXT_SAME``), or the categories differ in the tree.
"""

from __future__ import annotations

from typing import Any

from multimodal_cat.catalog.audits.categories import claimed
from multimodal_cat.catalog.audits.context import AuditContext, finding, relation
from multimodal_cat.catalog.build import seller_of

THRESHOLD = 0.95
TEXT_SAME = 0.9


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """A finding per pair of listings sharing one photo while disagreeing elsewhere."""
    if "image" not in ctx.vectors:
        return []
    threshold = ctx.options.get("reuse_threshold", THRESHOLD)
    rows, sims = ctx.neighbours("image")
    listed = claimed(ctx)
    text = ctx.vectors.get("text")
    seen, out = set(), []
    for i in range(len(rows)):
        for j, sim in zip(rows[i], sims[i], strict=True):
            pair = (min(i, int(j)), max(i, int(j)))
            if j < 0 or sim < threshold or pair in seen:
                continue
            seen.add(pair)
            a, b = ctx.products[pair[0]], ctx.products[pair[1]]
            reasons = []
            if seller_of(a) and seller_of(b) and seller_of(a) != seller_of(b):
                reasons.append(f"sellers {seller_of(a)!r} and {seller_of(b)!r}")
            title_cos = float(text[pair[0]] @ text[pair[1]]) if text is not None else 1.0
            if title_cos < TEXT_SAME and a.has_text and b.has_text:
                reasons.append(f"titles differ (cosine {title_cos:.2f})")
            link = relation(listed[pair[0]], listed[pair[1]])
            if link not in ("same", "ancestor", "unknown"):
                reasons.append(f"categories {listed[pair[0]]!r} and {listed[pair[1]]!r}")
            if not reasons:
                continue
            evidence = {
                "image_cosine": round(float(sim), 4), "reasons": reasons,
                "titles": [a.title, b.title], "sellers": [seller_of(a), seller_of(b)],
            }
            text_out = "one photo under " + "; ".join(reasons)
            score = float(sim) * min(1.0, 0.5 + 0.25 * len(reasons))
            out.append(finding("reuse", text_out, score, list(pair), ctx, evidence))
    return out
