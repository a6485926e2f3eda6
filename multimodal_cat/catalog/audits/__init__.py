"""Catalog audits: one module per check, one :func:`audit` entry point.

Checks: ``duplicates``, ``categories``, ``images``, ``reuse``, ``labels``. Every finding
carries its evidence and a score; the table is sorted by severity, then score. Rows that could
not be read or encoded are findings of their own (check ``input``, severity ``bad-row``):
reported, never dropped.

Example:
    >>> from multimodal_cat.catalog import CatalogEncoders, audit  # doctest: +SKIP
    >>> findings = audit(Path("feed.csv"), CatalogEncoders.from_names(),
    ...                  checks=["duplicates", "reuse"])  # doctest: +SKIP
    >>> findings[["check", "finding", "severity", "score", "ids"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from multimodal_cat.catalog.audits.context import FINDING_COLUMNS, SEVERITY_ORDER, AuditContext
from multimodal_cat.catalog.build import category_values, usable
from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.index import CatalogIndex
from multimodal_cat.catalog.thumbs import thumbnails
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.inputs import ColumnsLike, to_products
from multimodal_cat.products import Product

CHECKS = ("duplicates", "categories", "images", "reuse", "labels")

__all__ = ["CHECKS", "AuditError", "audit", "audit_context"]


class AuditError(MultimodalCatError, ValueError):
    """An audit asked for something it cannot do (an unknown check)."""


def parse_checks(checks: str | Sequence[str]) -> list[str]:
    """Check names from ``"a,b"`` or a list; ``all`` is every check.

    Raises:
        AuditError: an unknown check name.
    """
    names = [c.strip() for c in (checks.split(",") if isinstance(checks, str) else checks)]
    names = [c for c in names if c]
    if names == ["all"]:
        return list(CHECKS)
    unknown = [c for c in names if c not in CHECKS]
    if unknown or not names:
        raise AuditError(f"expected checks among {', '.join(CHECKS)} (or all); found {unknown}")
    return names


def map_seller_category(value: str, mapping: Any) -> str | None:
    """The seller's category in the curated tree, through a Mapping, a dict or a function."""
    if not value or mapping is None:
        return None
    if isinstance(mapping, Mapping):
        return mapping.get(value)
    if callable(mapping) and not hasattr(mapping, "map"):
        return mapping(value)
    try:
        paths = mapping.map(value).target_paths
    except (MultimodalCatError, KeyError, ValueError):
        return None
    return paths[0] if paths else None


def audit_context(
    data: Any,
    encoders: CatalogEncoders,
    *,
    category: str | Sequence[str] | None = None,
    seller_mapping: Any = None,
    reference: CatalogIndex | None = None,
    predictor: Any = None,
    columns: ColumnsLike = None,
    image_root: Any = None,
    options: dict[str, Any] | None = None,
) -> AuditContext:
    """Read and encode a feed once for every check (see :func:`audit` for the arguments)."""
    products = to_products(data, columns=columns, image_root=image_root)
    good, skipped = usable(products)
    row_of = {id(p): n for n, p in enumerate(products, start=1)}
    vectors = encoders.encode_products(good) if good else {}
    return AuditContext(
        products=good,
        rows=[row_of[id(p)] for p in good],
        vectors=vectors,
        categories=category_values(good, category),
        seller_categories=[map_seller_category(p.seller_category, seller_mapping) for p in good],
        skipped=skipped,
        reference=reference,
        predictor=predictor,
        options=dict(options or {}),
        thumbs=thumbnails([p.image for p in good])
        if any(p.image is not None for p in good) else None,
    )


def run_checks(ctx: AuditContext, checks: Sequence[str]) -> pd.DataFrame:
    """Run checks on a prepared context; findings sorted by severity, then score."""
    found: list[dict[str, Any]] = []
    for name in parse_checks(checks):
        module = importlib.import_module(f"multimodal_cat.catalog.audits.{name}")
        if ctx.products:
            found.extend(module.check(ctx))
    for bad in ctx.skipped.itertuples():
        found.append({
            "check": "input", "finding": str(bad.error), "severity": "bad-row", "score": 1.0,
            "ids": [bad.id], "rows": [bad.row], "evidence": {"error": bad.error},
        })
    frame = pd.DataFrame(found, columns=FINDING_COLUMNS)
    if frame.empty:
        return frame
    frame["_order"] = frame["severity"].map(SEVERITY_ORDER)
    frame = frame.sort_values(["_order", "score"], ascending=[True, False], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def audit(
    data: Any,
    encoders: CatalogEncoders,
    *,
    checks: str | Sequence[str] = CHECKS,
    category: str | Sequence[str] | None = None,
    seller_mapping: Any = None,
    reference: CatalogIndex | None = None,
    predictor: Any = None,
    columns: ColumnsLike = None,
    image_root: Any = None,
    options: dict[str, Any] | None = None,
    products_out: Callable[[list[Product]], None] | None = None,
) -> pd.DataFrame:
    """Audit a catalog feed: duplicates, mismatched categories, image-title conflicts, reused
    photos, label errors.

    Args:
        data: titles, records, a DataFrame, a dataset or a ``pathlib.Path`` to a feed.
        encoders: text and/or image encoders (their vectors come from the embedding cache).
        checks: names or ``"a,b"`` (default: all five).
        category: column(s) with the curated category (``"masterCategory,subCategory"``).
        seller_mapping: maps the seller's category into the curated tree (a
            :class:`~multimodal_cat.mapping.Mapping`, published or inferred, a dict or a function).
        reference: a labelled :class:`CatalogIndex` built with the same encoders, to vote
            categories from (default: the feed itself, leaving each product out).
        predictor: optional predictor (``predict(products) -> list[Prediction]``); a
            checkpoint's ``by_input`` then gives the image-only and text-only categories.
        options: thresholds (``image_threshold``, ``text_threshold``, ``model_threshold``,
            ``category_threshold``, ``image_conflict_threshold``, ``reuse_threshold``).
        products_out: called with the encoded products (the HTML report shows their photos).

    Returns:
        A DataFrame: check, finding, severity (high, medium, low, bad-row), score, ids, rows
        (1-based feed rows), evidence (a dict), sorted by severity then score.

    Raises:
        AuditError: an unknown check.
        CatalogIndexError: ``reference`` was built with other encoders.
    """
    names = parse_checks(checks)
    if reference is not None:
        for modality in reference.encoders:
            encoders.check(reference, modality)
    ctx = audit_context(
        data, encoders, category=category, seller_mapping=seller_mapping, reference=reference,
        predictor=predictor, columns=columns, image_root=image_root, options=options,
    )
    if products_out is not None:
        products_out(ctx.products)
    return run_checks(ctx, names)
