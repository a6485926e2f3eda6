"""Build or grow a catalog index from products given in any form the library reads.

Every input goes through :func:`multimodal_cat.inputs.to_products` (the one input rule). A
product that cannot be indexed (no text and no usable image, an unreadable row) is not
dropped silently: it comes back in the ``skipped`` table with its reason.

Example:
    >>> from multimodal_cat.catalog.embed import CatalogEncoders  # doctest: +SKIP
    >>> result = build_index(Path("feed.csv"), CatalogEncoders.from_names())  # doctest: +SKIP
    >>> result.index.save("catalog.idx"); result.skipped  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError
from multimodal_cat.inputs import (
    ColumnsLike,
    InputColumnError,
    cell_text,
    column_values,
    to_products,
)
from multimodal_cat.products import Product

SELLER_COLUMNS = ("seller", "shop", "merchant", "vendor", "seller_id")


@dataclass
class BuildResult:
    """An index and the products that were not put in it (``id``, ``row``, ``error``)."""

    index: CatalogIndex
    skipped: pd.DataFrame


def category_values(products: Sequence[Product], category: str | Sequence[str] | None) -> list:
    """Each product's curated category path: the values of the column(s) ``category`` names
    (``"masterCategory,subCategory"`` joins them with ``" > "``), or one value per product.

    Raises:
        CatalogIndexError: a named column is in no product, or the counts differ.
    """
    if category is None:
        return [None] * len(products)
    if not isinstance(category, str):
        values = list(category)
        if len(values) != len(products):
            raise CatalogIndexError(
                f"expected one category per product ({len(products)}); found {len(values)}"
            )
        return [str(v) if v is not None and v == v else None for v in values]
    try:
        return column_values(products, category, what="category")
    except InputColumnError as error:
        raise CatalogIndexError(str(error)) from None


def seller_of(product: Product) -> str:
    """The product's seller or shop column, when the feed has one."""
    for name in SELLER_COLUMNS:
        if cell_text(product.extra.get(name)):
            return str(product.extra[name])
    return ""


def product_record(product: Product) -> dict[str, Any]:
    """What a report shows for a product: title, image reference, seller and its category."""
    return {
        "title": product.title,
        "image_ref": product.image_ref,
        "seller": seller_of(product),
        "seller_category": product.seller_category,
    }


def usable(products: Sequence[Product]) -> tuple[list[Product], pd.DataFrame]:
    """Products that can be indexed, and a table of the others with their reasons."""
    good, bad = [], []
    for row, product in enumerate(products, start=1):
        if "error" in product.extra:
            bad.append({"id": product.id, "row": row, "error": product.extra["error"]})
        else:
            good.append(product)
    return good, pd.DataFrame(bad, columns=["id", "row", "error"])


def build_index(
    data: Any,
    encoders: CatalogEncoders,
    *,
    category: str | Sequence[str] | None = None,
    columns: ColumnsLike = None,
    image_root: Any = None,
    index: CatalogIndex | None = None,
    learn_kinds: bool = True,
) -> BuildResult:
    """Encode products and put them in ``index`` (a new one when None).

    Args:
        data: titles, records, a DataFrame, a dataset or a ``pathlib.Path`` to a feed.
        encoders: the encoders (an existing index must have been built with the same ones).
        category: column(s) holding each product's curated category, for ``within=`` queries
            and the category audits.
        columns, image_root: as for :func:`~multimodal_cat.inputs.to_products`.
        index: an index to add to (``index add``).
        learn_kinds: fit the index's kind probes afterwards (:meth:`CatalogIndex.learn_kinds`:
            similar-product results of the query's predicted category; needs categories).

    Raises:
        CatalogIndexError: ``index`` was built with other encoders.
    """
    products = to_products(data, columns=columns, image_root=image_root)
    good, skipped = usable(products)
    if index is None:
        index = CatalogIndex(encoders=encoders.keys)
        index.specs = encoders.specs
    for modality in index.encoders:
        encoders.check(index, modality)
    if good:
        vectors = encoders.encode_products(good)
        index.add(
            [p.id for p in good],
            text=vectors.get("text"),
            image=vectors.get("image"),
            categories=category_values(good, category),
            records=[product_record(p) for p in good],
        )
    if learn_kinds and category is not None:
        index.learn_kinds()
    return BuildResult(index, skipped)
