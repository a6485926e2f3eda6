"""What every audit check reads: the feed's products, their vectors, categories and the
neighbour lists computed once for all checks.

Neighbours come from a :class:`~multimodal_cat.catalog.index.CatalogIndex` (exact below its
threshold, usearch above), ``k`` per product: memory grows with ``N * k``, never ``N^2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from multimodal_cat.catalog.index import CatalogIndex
from multimodal_cat.products import Product
from multimodal_cat.taxonomy.index import path_key, split_path

FINDING_COLUMNS = ["check", "finding", "severity", "score", "ids", "rows", "evidence"]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "bad-row": 3}
NEIGHBOURS = 10


@dataclass
class AuditContext:
    """The audited feed, encoded once.

    Attributes:
        products: the products that could be encoded (bad rows are in ``skipped``).
        rows: each product's 1-based row number in the feed.
        vectors: unit ``text`` / ``image`` vectors (zero rows where missing).
        categories: each product's curated category path (or None).
        seller_categories: each product's seller category mapped into the curated tree (or None).
        reference: a labelled index to vote categories from (default: the feed itself).
        predictor: optional predictor with ``predict(products)`` (for categories and images).
        thumbs: small photo thumbnails and which products have one (``catalog.thumbs``), for
            crop-tolerant duplicate photos; None when the photos are not at hand.
        photos: how to get product ``i``'s decoded photo when the products do not hold it
            (e.g. opened from a file on demand); default: ``products[i].image``.
    """

    products: list[Product]
    rows: list[int]
    vectors: dict[str, np.ndarray]
    categories: list[str | None]
    seller_categories: list[str | None]
    skipped: pd.DataFrame
    reference: CatalogIndex | None = None
    predictor: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    thumbs: tuple[np.ndarray, np.ndarray] | None = None
    photos: Callable[[int], Image.Image | None] | None = None
    _neighbours: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)  # per-feed results checks share

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]

    def photo(self, row: int) -> Image.Image | None:
        """Product ``row``'s decoded photo (None when it has none)."""
        return self.photos(row) if self.photos is not None else self.products[row].image

    def has(self, modality: str) -> np.ndarray:
        """Which products carry a ``modality`` vector."""
        if modality not in self.vectors:
            return np.zeros(len(self.products), bool)
        return np.linalg.norm(self.vectors[modality], axis=1) > 0

    def neighbours(self, modality: str, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
        """Each product's ``k`` nearest other products of the feed by ``modality``: row
        positions (-1 where fewer) and cosines; computed once per modality."""
        if modality not in self._neighbours:
            self._neighbours[modality] = self._search(modality, k)
        return self._neighbours[modality]

    def _search(self, modality: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.products)
        rows = np.full((n, k), -1, np.int64)
        sims = np.zeros((n, k), np.float32)
        present = np.flatnonzero(self.has(modality))
        if len(present) < 2:
            return rows, sims
        index = CatalogIndex(encoders={modality: modality})
        index.add([str(i) for i in present], **{modality: self.vectors[modality][present]})
        hits = index.search(self.vectors[modality][present], kind=modality, k=k + 1)
        for row, found in zip(present, hits, strict=True):
            others = [(int(i), s) for i, s in found if int(i) != row][:k]
            rows[row, : len(others)] = [i for i, _ in others]
            sims[row, : len(others)] = [s for _, s in others]
        return rows, sims


def relation(a: str | None, b: str | None) -> str:
    """How two category paths relate in the tree: ``same``, ``ancestor`` (one contains the
    other), ``sibling`` (same parent), ``cousin`` (same root), ``other-root`` or ``unknown``.

    Example:
        >>> relation("Apparel > Shoes", "apparel > shoes > boots"), relation("A > B", "C")
        ('ancestor', 'other-root')
    """
    if not a or not b:
        return "unknown"
    ka, kb = split_path(path_key(a)), split_path(path_key(b))
    if ka == kb:
        return "same"
    shorter = min(len(ka), len(kb))
    if ka[:shorter] == kb[:shorter]:
        return "ancestor"
    if len(ka) == len(kb) > 1 and ka[:-1] == kb[:-1]:
        return "sibling"
    if ka[0] == kb[0]:
        return "cousin"  # same root, different branches
    return "other-root"


# How much a disagreement between two categories weighs, by their relation in the tree.
RELATION_WEIGHT = {
    "same": 0.0, "ancestor": 0.0, "sibling": 0.6, "cousin": 0.8, "other-root": 1.0, "unknown": 0.0
}


def severity_of(score: float, high: float = 0.8, medium: float = 0.5) -> str:
    """``high`` / ``medium`` / ``low`` from a score in [0, 1]."""
    return "high" if score >= high else "medium" if score >= medium else "low"


def finding(
    check: str,
    text: str,
    score: float,
    rows: list[int],
    ctx: AuditContext,
    evidence: dict[str, Any],
    severity: str | None = None,
) -> dict[str, Any]:
    """One finding row (positions in ``rows`` are turned into ids and feed row numbers)."""
    return {
        "check": check,
        "finding": text,
        "severity": severity or severity_of(score),
        "score": round(float(score), 4),
        "ids": [ctx.products[r].id for r in rows],
        "rows": [ctx.rows[r] for r in rows],
        "evidence": evidence,
    }


def vote(
    rows: np.ndarray, sims: np.ndarray, labels: list[str | None]
) -> tuple[str | None, float, dict[str, float]]:
    """A similarity-weighted category vote of neighbours: top category, its share, all shares."""
    weights: dict[str, float] = {}
    for row, sim in zip(rows, sims, strict=True):
        if row >= 0 and labels[row] and sim > 0:
            weights[labels[row]] = weights.get(labels[row], 0.0) + float(sim)
    total = sum(weights.values())
    if not total:
        return None, 0.0, {}
    shares = {label: w / total for label, w in weights.items()}
    top = max(shares, key=shares.__getitem__)
    return top, shares[top], shares
