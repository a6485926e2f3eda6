"""Duplicate listings: products whose photo and/or text are near-identical, grouped.

A pair is a candidate when its image cosine reaches ``image_threshold`` (re-encoded, resized
or cropped photos) or its text cosine reaches ``text_threshold`` (reworded titles), or when the
photo and title both reach ``both_image_threshold`` and ``both_text_threshold``, or the
two are each other's nearest text neighbour with a cosine of at least ``mutual_threshold``, or
when both titles name the same rare model number (found through an inverted index, not only
among neighbours) and the text cosine reaches ``model_threshold``.
Variants of one style are kept apart: titles that differ in a colour or size word, or name
different model numbers, are never merged, however close their photos are.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from multimodal_cat.catalog.audits.context import AuditContext, finding
from multimodal_cat.catalog.embed import product_text

IMAGE_THRESHOLD = 0.95
TEXT_THRESHOLD = 0.95
MODEL_THRESHOLD = 0.6
BOTH_IMAGE, BOTH_TEXT = 0.9, 0.85  # both close (chosen on the fashion benchmark's dev half)
MODEL_MAX_ROWS = 3  # a model number named by more rows is a series name, not one product
MUTUAL_THRESHOLD = 1.01  # off unless chosen on labelled pairs (abt-buy: see the benchmark)
_UNIT = re.compile(r"\d+(gb|mb|tb|in|hz|khz|mhz|ghz|mm|cm|w|v|mah|mp|ft|lb|lbs|oz|ohm|p|x)$")

_COLOUR_WORDS = (
    "black white red blue green yellow pink purple orange brown grey gray silver gold beige navy "
    "maroon olive teal cream khaki charcoal magenta turquoise burgundy lavender peach rust mustard "
    "copper bronze tan ivory multi violet coral aqua mauve nude steel"
)
COLOURS = frozenset(_COLOUR_WORDS.split())
_SIZE_WORDS = "xxs xs s m l xl xxl xxxl 2xl 3xl small medium large mini"
SIZES = frozenset(_SIZE_WORDS.split())
_WORD = re.compile(r"[a-z0-9]+(?:[-./][a-z0-9]+)*")


def words(text: str) -> set[str]:
    """Lower-case word tokens of a title."""
    return set(_WORD.findall(text.lower()))


def model_numbers(text: str) -> set[str]:
    """Tokens that look like model numbers: letters and digits mixed, at least 5 characters,
    separators removed (``"KDL-40V4100"`` -> ``"kdl40v4100"``); sizes such as ``500GB`` or
    ``1080p`` are not model numbers."""
    found = set()
    for token in _WORD.findall(text.lower()):
        flat = re.sub(r"[-./]", "", token)
        mixed = re.search(r"\d", flat) and re.search(r"[a-z]", flat)
        if len(flat) >= 5 and mixed and not _UNIT.fullmatch(flat):
            found.add(flat)
    return found


def variant_difference(a: str, b: str) -> str | None:
    """Why two titles are variants of one style rather than one listing (colour, size or model
    number that differs), or None.

    Example:
        >>> variant_difference("Nike Tee Red M", "Nike Tee Blue M")
        'colour: red vs blue'
    """
    wa, wb = words(a), words(b)
    for name, vocabulary in (("colour", COLOURS), ("size", SIZES)):
        only_a, only_b = (wa - wb) & vocabulary, (wb - wa) & vocabulary
        if only_a and only_b:
            return f"{name}: {', '.join(sorted(only_a))} vs {', '.join(sorted(only_b))}"
    ma, mb = model_numbers(a), model_numbers(b)
    if ma and mb and not ma & mb:
        return f"model number: {', '.join(sorted(ma))} vs {', '.join(sorted(mb))}"
    return None


def rare_model_pairs(models: list[set[str]], most: int = MODEL_MAX_ROWS) -> set[tuple[int, int]]:
    """Pairs (i < j) whose titles share a model number that at most ``most`` rows name (an
    inverted index: linear in the feed, however far apart the titles' vectors are)."""
    rows_of: dict[str, list[int]] = {}
    for row, found in enumerate(models):
        for token in found:
            rows_of.setdefault(token, []).append(row)
    pairs = set()
    for rows in rows_of.values():
        if 1 < len(rows) <= most:
            pairs.update((a, b) for a in rows for b in rows if a < b)
    return pairs


def pair_scores(
    ctx: AuditContext, extra: set[tuple[int, int]] = frozenset()
) -> dict[tuple[int, int], dict[str, float]]:
    """Image and text cosines of every neighbour pair (i < j) the kNN lists hold, and of the
    ``extra`` pairs."""
    pairs: dict[tuple[int, int], dict[str, float]] = {pair: {} for pair in extra}
    for modality in ("image", "text"):
        if modality not in ctx.vectors:
            continue
        rows, sims = ctx.neighbours(modality)
        for i in range(len(rows)):
            for j, sim in zip(rows[i], sims[i], strict=True):
                if j >= 0:
                    pairs.setdefault((min(i, j), max(i, j)), {})[modality] = float(sim)
    for (i, j), scores in pairs.items():  # fill the other modality's cosine
        for modality in ("image", "text"):
            if modality in ctx.vectors and modality not in scores:
                a, b = ctx.vectors[modality][i], ctx.vectors[modality][j]
                if a.any() and b.any():
                    scores[modality] = float(a @ b)
    return pairs


def duplicate_pairs(ctx: AuditContext) -> list[tuple[int, int, float, dict[str, Any]]]:
    """Pairs judged duplicates: ``(i, j, score, evidence)``."""
    options = ctx.options
    t_image = options.get("image_threshold", IMAGE_THRESHOLD)
    t_text = options.get("text_threshold", TEXT_THRESHOLD)
    t_model = options.get("model_threshold", MODEL_THRESHOLD)
    t_mutual = options.get("mutual_threshold", MUTUAL_THRESHOLD)
    both_image = options.get("both_image_threshold", BOTH_IMAGE)
    both_text = options.get("both_text_threshold", BOTH_TEXT)
    texts = [product_text(p) for p in ctx.products]
    if "pair_scores" not in ctx.memo:  # computed once per feed, whatever the thresholds
        ctx.memo["model_numbers"] = [model_numbers(t) for t in texts]
        ctx.memo["pair_scores"] = pair_scores(ctx, rare_model_pairs(ctx.memo["model_numbers"]))
    models = ctx.memo["model_numbers"]
    nearest = ctx.neighbours("text")[0][:, 0] if "text" in ctx.vectors else None
    found = []
    for (i, j), scores in ctx.memo["pair_scores"].items():
        image, text = scores.get("image", 0.0), scores.get("text", 0.0)
        shared = models[i] & models[j]
        why = [
            name
            for name, hit in (
                ("image", image >= t_image),
                ("text", text >= t_text),
                ("image and text", image >= both_image and text >= both_text),
                ("mutual nearest", nearest is not None and text >= t_mutual
                 and nearest[i] == j and nearest[j] == i),
                ("model number", bool(shared) and text >= t_model),
            )
            if hit
        ]
        if not why or variant_difference(texts[i], texts[j]):
            continue
        evidence = {"image_cosine": round(image, 4), "text_cosine": round(text, 4), "by": why}
        if shared:
            evidence["model_numbers"] = sorted(shared)
        found.append((i, j, max(image, text), evidence))
    return found


def groups(pairs: list[tuple[int, int, float, dict[str, Any]]]) -> list[list[int]]:
    """Connected groups of duplicate pairs (union-find), each sorted."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _, _ in pairs:
        parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for x in list(parent):
        members.setdefault(root(x), []).append(x)
    return [sorted(m) for m in members.values()]


def check(ctx: AuditContext) -> list[dict[str, Any]]:
    """One finding per duplicate group, with every pair's cosines as evidence."""
    pairs = duplicate_pairs(ctx)
    group_of = {member: n for n, members in enumerate(groups(pairs)) for member in members}
    by_group: dict[int, list[tuple[int, int, float, dict[str, Any]]]] = {}
    for pair in pairs:
        by_group.setdefault(group_of[pair[0]], []).append(pair)
    members_of: dict[int, list[int]] = {}
    for member, n in group_of.items():
        members_of.setdefault(n, []).append(member)
    out = []
    for n, group_pairs in by_group.items():
        members = sorted(members_of[n])
        score = float(np.mean([p[2] for p in group_pairs]))
        evidence = {
            "pairs": [
                {"ids": [ctx.products[i].id, ctx.products[j].id], **ev}
                for i, j, _, ev in group_pairs
            ],
            "titles": [ctx.products[r].title for r in members],
        }
        text = f"{len(members)} listings look like one product"
        out.append(finding("duplicates", text, score, members, ctx, evidence))
    return out
