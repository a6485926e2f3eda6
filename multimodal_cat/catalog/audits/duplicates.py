"""Duplicate listings: products whose photo and/or text are near-identical, grouped.

When both listings have a photo, the photos decide: a pair is a duplicate only when one photo
is a copy of the other (re-encoded, resized, cropped; ``catalog.copies``: keypoints matched
under one similarity transform, the same detail and colours once aligned) and its text cosine
reaches ``photo_text_threshold``. Photos that merely look alike (different products of one
brand shot on white) or near-identical titles over different photos (one title reused for
several designs) are not enough. Only candidate pairs are compared, one pair's photos at a
time: among the encoders' neighbours and each photo's nearest photos in pixels
(:func:`~multimodal_cat.catalog.thumbs.nearest_photos`), those whose thumbnails match
crop-tolerantly (``catalog.thumbs``; ``photo_threshold``) or whose image cosine reaches
``image_threshold``, and whose text cosine reaches ``photo_text_threshold``; the verdict takes
``copy_correlation`` and ``copy_colour`` (see
:meth:`~multimodal_cat.catalog.copies.PhotoComparison.is_copy`).

When a listing lacks a photo (or the photos are not at hand), the text decides: a pair is a
candidate when its image cosine reaches ``image_threshold`` (one photo re-saved; photos not at
hand) or its text cosine reaches ``text_threshold`` (reworded titles), or when the photo and
title both reach ``both_image_threshold`` and ``both_text_threshold`` (photos not at hand), or
the two listings of different sellers are each other's best match among the other sellers'
listings (text cosine, plus :data:`CODE_BONUS` when their model numbers agree; two shops
listing one product) with a text cosine of at least ``mutual_threshold``, or when their model
numbers agree (found through an inverted index too, not only among neighbours) and the text
cosine reaches ``model_threshold``.

Model numbers agree when one title's code, or the code less a short variant suffix of up to
three characters (``DMCFZ28K`` -> ``DMCFZ28``), is spelled in the other title, separators and
spaces removed (``DMC-FZ28``, ``Coolpix P6000``); they conflict when both titles name codes
and none agrees.
Variants of one style are kept apart: titles that differ in a colour or size word, or whose
model numbers conflict, are never merged, however close their photos are; photos whose colours
differ once aligned are not copies.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from multimodal_cat._progress import plural, progress_bar
from multimodal_cat.catalog.audits.context import AuditContext, finding
from multimodal_cat.catalog.build import seller_of
from multimodal_cat.catalog.copies import (
    MAX_COLOUR,
    MIN_CORRELATION,
    PhotoComparison,
    compare_photos,
)
from multimodal_cat.catalog.embed import product_text
from multimodal_cat.catalog.thumbs import nearest_photos, photo_matches

IMAGE_THRESHOLD = 0.995  # encoder cosine of one photo re-saved (see catalog.thumbs for copies)
# thumbnail match that makes a pair a candidate copy, text cosine a copy's titles need
PHOTO_THRESHOLD, PHOTO_TEXT = 0.9, 0.7  # chosen on the fashion benchmark's dev half
TEXT_THRESHOLD = 0.95
MODEL_THRESHOLD = 0.3  # chosen on Abt-Buy's train + valid labelled pairs
BOTH_IMAGE, BOTH_TEXT = 0.9, 0.85  # both close (chosen on the fashion benchmark's dev half)
MODEL_MAX_ROWS = 3  # a model number named by more rows is a series name, not one product
# chosen on Abt-Buy's train + valid labelled pairs (benchmarks/catalog_qc.py)
MUTUAL_THRESHOLD = 0.4  # across sellers only: inert in a one-seller feed
CODE_BONUS = 0.3  # added to the text cosine of pairs whose codes agree when ranking matches
SUFFIX = 3  # characters a variant suffix of a model number may add (colour, region)
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
_COUNT = re.compile(r"\d+[a-z]{3,}")  # 6disc, 24port, 3pack: a count and a word


def words(text: str) -> set[str]:
    """Lower-case word tokens of a title."""
    return set(_WORD.findall(text.lower()))


def _flat_tokens(text: str) -> list[str]:
    return [re.sub(r"[-./]", "", token) for token in _WORD.findall(text.lower())]


def model_numbers(text: str) -> set[str]:
    """Tokens that look like model numbers: letters and digits mixed, at least 5 characters,
    separators removed (``"KDL-40V4100"`` -> ``"kdl40v4100"``); sizes such as ``500GB`` or
    ``1080p`` and counts such as ``6-disc`` are not model numbers."""
    found = set()
    for flat in _flat_tokens(text):
        mixed = re.search(r"\d", flat) and re.search(r"[a-z]", flat)
        if len(flat) < 5 or not mixed or _UNIT.fullmatch(flat) or _COUNT.fullmatch(flat):
            continue
        found.add(flat)
    return found


def spellings(text: str, span: int = 3) -> set[str]:
    """Every run of up to ``span`` consecutive words, separators removed and joined
    (``"coolpix p6000 black"`` -> ``coolpix``, ``coolpixp6000``, ``coolpixp6000black``...)."""
    tokens = _flat_tokens(text)
    return {"".join(tokens[i : i + n]) for i in range(len(tokens)) for n in range(1, span + 1)
            if i + n <= len(tokens)}


def _spelled_in(code: str, other: set[str]) -> bool:
    """Whether ``code``, or ``code`` less up to :data:`SUFFIX` final characters (still a
    mixed code of 4+ characters), is one of ``other``'s spellings."""
    for cut in range(SUFFIX + 1):
        stem = code[: len(code) - cut]
        if len(stem) < 4 or not (re.search(r"\d", stem) and re.search(r"[a-z]", stem)):
            return False
        if stem in other:
            return True
    return False


def codes_agree(
    codes_a: set[str], codes_b: set[str], spelled_a: set[str], spelled_b: set[str]
) -> str:
    """``"same"`` when a code of one title is spelled in the other, ``"conflict"`` when both
    name codes and none is, else ``"none"``.

    Example:
        >>> a, b = "Panasonic Lumix DMCFZ28K black", "Panasonic Lumix DMC-FZ28 camera"
        >>> codes_agree(model_numbers(a), model_numbers(b), spellings(a), spellings(b))
        'same'
    """
    if any(_spelled_in(c, spelled_b) for c in codes_a) or any(
        _spelled_in(c, spelled_a) for c in codes_b
    ):
        return "same"
    return "conflict" if codes_a and codes_b else "none"


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
    if codes_agree(ma, mb, spellings(a), spellings(b)) == "conflict":
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
    """Image and text cosines of every neighbour pair (i < j) the kNN lists hold, of each
    photo's nearest photos in pixels (when the thumbnails are at hand) and of the ``extra``
    pairs."""
    if ctx.thumbs is not None:
        extra = set(extra) | nearest_photos(*ctx.thumbs)
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
    if ctx.thumbs is not None:
        for pair, score in photo_matches(*ctx.thumbs, pairs).items():
            pairs[pair]["photo"] = score
    return pairs


def _code_evidence(ctx: AuditContext, texts: list[str]) -> None:
    """Per-feed memo: each title's rare model numbers (named by at most
    :data:`MODEL_MAX_ROWS` rows) and spellings."""
    codes = [model_numbers(t) for t in texts]
    rows_of: dict[str, int] = {}
    for found in codes:
        for code in found:
            rows_of[code] = rows_of.get(code, 0) + 1
    ctx.memo["model_numbers"] = [{c for c in found if rows_of[c] <= MODEL_MAX_ROWS}
                                 for found in codes]
    ctx.memo["spellings"] = [spellings(t) for t in texts]


def _best_matches(
    pairs: dict[tuple[int, int], dict[str, Any]], sellers: list[str], key: str
) -> np.ndarray:
    """Each row's best partner among the candidate pairs with another (named) seller, by
    ``pairs[...][key]`` (-1: none)."""
    best = np.full(len(sellers), -1, np.int64)
    score = np.full(len(sellers), -np.inf)
    for (i, j), scores in pairs.items():
        if not sellers[i] or not sellers[j] or sellers[i] == sellers[j]:
            continue
        value = scores[key]
        for a, b in ((i, j), (j, i)):
            if value > score[a]:
                score[a], best[a] = value, b
    return best


def verified_copies(
    ctx: AuditContext, pairs: list[tuple[int, int]]
) -> dict[tuple[int, int], PhotoComparison]:
    """Each pair's photo comparison (``catalog.copies``), memoised per feed; one pair's photos
    are decoded or held at a time."""
    done = ctx.memo.setdefault("photo_copies", {})
    todo = [pair for pair in pairs if pair not in done]
    bar = progress_bar(todo, desc=f"checking {plural(len(todo), 'photo pair')} for copies",
                       unit="pair", disable=not todo)
    for i, j in bar:
        a, b = ctx.photo(i), ctx.photo(j)
        done[(i, j)] = compare_photos(a, b) if a is not None and b is not None \
            else PhotoComparison()
        del a, b
    return {pair: done[pair] for pair in pairs}


def _candidate_copies(ctx: AuditContext, t: dict[str, float]) -> list[tuple[int, int]]:
    """Pairs whose photos are both at hand and alike enough to be compared as copies, and whose
    titles are close enough for a copy to count (``photo_text_threshold``)."""
    present = ctx.thumbs[1]
    return sorted(
        pair for pair, scores in ctx.memo["pair_scores"].items()
        if present[pair[0]] and present[pair[1]]
        and scores.get("text", 0.0) >= t["photo_text_threshold"]
        and (scores.get("photo", 0.0) >= t["photo_threshold"]
             or scores.get("image", 0.0) >= t["image_threshold"])
    )


OPTION_DEFAULTS = {  # audit option -> default
    "image_threshold": IMAGE_THRESHOLD, "text_threshold": TEXT_THRESHOLD,
    "model_threshold": MODEL_THRESHOLD, "mutual_threshold": MUTUAL_THRESHOLD,
    "both_image_threshold": BOTH_IMAGE, "both_text_threshold": BOTH_TEXT,
    "photo_threshold": PHOTO_THRESHOLD, "photo_text_threshold": PHOTO_TEXT,
    "copy_correlation": MIN_CORRELATION, "copy_colour": MAX_COLOUR,
}


def _scored_pairs(ctx: AuditContext, texts: list[str]) -> dict[tuple[int, int], dict[str, Any]]:
    """Every candidate pair's cosines, photo match and model-number agreement (per feed)."""
    if "pair_scores" not in ctx.memo:  # computed once per feed, whatever the thresholds
        _code_evidence(ctx, texts)
        codes, spelled = ctx.memo["model_numbers"], ctx.memo["spellings"]
        pairs = pair_scores(ctx, rare_model_pairs(codes))
        for (i, j), scores in pairs.items():
            scores["codes"] = codes_agree(codes[i], codes[j], spelled[i], spelled[j])
            bonus = {"same": CODE_BONUS, "conflict": -CODE_BONUS}.get(scores["codes"], 0.0)
            scores["match"] = scores.get("text", scores.get("image", 0.0)) + bonus
        ctx.memo["pair_scores"] = pairs
        sellers = [seller_of(p) for p in ctx.products]
        ctx.memo["best"] = _best_matches(pairs, sellers, "match")
    return ctx.memo["pair_scores"]


def _reasons(t: dict[str, float], scores: dict[str, Any], copy: PhotoComparison | None,
             both_photos: bool, mutual: bool) -> list[str]:
    """Why a pair is a duplicate (empty: it is not). With both photos at hand the photos
    decide (one title often names several products: fashion has 5 "Kids Boys Check Blue
    Shirts" with 5 different photos); else the text, model numbers and encoder cosines."""
    image, text = scores.get("image", 0.0), scores.get("text", 0.0)
    if both_photos:
        hit = copy is not None and copy.is_copy(t["copy_correlation"], t["copy_colour"])
        return ["photo copy"] if hit and text >= t["photo_text_threshold"] else []
    return [
        name
        for name, hit in (
            ("image", image >= t["image_threshold"]),
            ("text", text >= t["text_threshold"]),
            ("image and text", image >= t["both_image_threshold"]
             and text >= t["both_text_threshold"]),
            ("mutual best match", text >= t["mutual_threshold"] and mutual),
            ("model number", scores["codes"] == "same" and text >= t["model_threshold"]),
        )
        if hit
    ]


def duplicate_pairs(ctx: AuditContext) -> list[tuple[int, int, float, dict[str, Any]]]:
    """Pairs judged duplicates: ``(i, j, score, evidence)``."""
    t = {name: ctx.options.get(name, default) for name, default in OPTION_DEFAULTS.items()}
    texts = [product_text(p) for p in ctx.products]
    pairs = _scored_pairs(ctx, texts)
    codes, best = ctx.memo["model_numbers"], ctx.memo["best"]
    present = ctx.thumbs[1] if ctx.thumbs is not None else None
    copies = {} if present is None else verified_copies(ctx, _candidate_copies(ctx, t))
    found = []
    for (i, j), scores in pairs.items():
        copy = copies.get((i, j))
        both_photos = present is not None and bool(present[i] and present[j])
        why = _reasons(t, scores, copy, both_photos, best[i] == j and best[j] == i)
        if not why or variant_difference(texts[i], texts[j]):
            continue
        image, text, photo = (scores.get(m, 0.0) for m in ("image", "text", "photo"))
        evidence = {"image_cosine": round(image, 4), "text_cosine": round(text, 4), "by": why}
        if "photo" in scores:
            evidence["photo_match"] = round(photo, 4)
        if copy is not None:
            evidence["photo_copy"] = copy.evidence()
        if scores["codes"] == "same":
            evidence["model_numbers"] = sorted(codes[i] | codes[j])
        found.append((i, j, max(image, text, photo), evidence))
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
