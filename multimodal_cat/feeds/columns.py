"""Which feed column holds which product field, and how a raw row becomes a :class:`Product`.

Feeds name their columns in many ways (``Name``, ``productDisplayName``, ``sku``...). A
:class:`ColumnMap` says which input column feeds each product field; fields left unset are
looked up under their usual names. Only the text fields are optional one by one; at least one
text column or the image column must exist, and the id column is optional (the row number is
used instead).

Example:
    >>> cols = ColumnMap.from_args(["title=Name", "image=picture"])
    >>> cols.resolve(["sku", "Name", "picture"]).title
    'Name'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.feeds.text import plain_text
from multimodal_cat.products import Product

logger = logging.getLogger(__name__)

FIELDS = ("id", "title", "description", "brand", "seller_category", "image")
TEXT_FIELDS = ("title", "description", "brand", "seller_category")

# Usual names for each field, tried in order when the user names none. A column matches
# whatever its case, spaces and punctuation (see column_key): "Product Name", "product-name" and
# "PRODUCT_NAME" are product_name. Beside the plain names: Google Merchant Center feeds (title,
# image_link, product_type), Shopify's product export (Handle, Title, Body (HTML), Vendor,
# Product Category, Image Src), Amazon's (item_name, brand_name, main_image_url) and
# WooCommerce's (Name, Short description, Categories).
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "sku", "product_id", "item_id", "offer_id", "variant_sku", "handle", "asin"),
    "title": (
        "title", "name", "product_name", "productdisplayname", "product_title", "item_name",
        "item_title", "offer_title",
    ),
    "description": (
        "description", "desc", "body", "body_html", "product_description", "item_description",
        "short_description", "long_description",
    ),
    "brand": ("brand", "vendor", "manufacturer", "brand_name", "make"),
    "seller_category": (
        "seller_category", "category", "product_type", "product_category", "categories",
        "breadcrumb", "department",
    ),
    "image": (
        "image", "image_url", "image_link", "image_path", "img", "image_src", "main_image_url",
        "image_file", "imageurl", "picture", "photo", "picurl",
    ),
}  # fmt: skip


def column_key(name: str) -> str:
    """A column name as :data:`DEFAULT_NAMES` spells it: lower case, runs of anything but
    letters and digits as one ``_``, none at the ends.

    Example:
        >>> column_key("Body (HTML)"), column_key(" Product Name "), column_key("imageURL")
        ('body_html', 'product_name', 'imageurl')
    """
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")

# Longest text kept per field, in characters; longer values are cut with a warning.
DEFAULT_CAPS: dict[str, int] = {
    "id": 256,
    "title": 1_000,
    "description": 10_000,
    "brand": 256,
    "seller_category": 1_000,
    "image": 4_096,
}
BOM = "\ufeff"  # a byte-order mark: never part of a value (files concatenated with theirs)

# A ``data:`` URL image holds the image itself: it is capped by the image size cap (20 MB, as
# base64 text plus its header), not by the 4,096 characters of an image path or URL.
DATA_URL_CAP = 4 * -(-20 * 1024 * 1024 // 3) + 1_024


class FeedColumnError(MultimodalCatError, ValueError):
    """The feed lacks a column the user named, or has no usable column at all."""


@dataclass(frozen=True)
class ColumnMap:
    """Input column name for each product field (``None``: look for the usual names).

    Attributes:
        id, title, description, brand, seller_category, image: Input column names.
        caps: Longest text kept per field (characters).
        tags: Attribute -> input column holding its value(s), for training the tag head
            (always named by the user; never looked up).
    """

    id: str | None = None
    title: str | None = None
    description: str | None = None
    brand: str | None = None
    seller_category: str | None = None
    image: str | None = None
    caps: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, pairs: Iterable[str] | Mapping[str, str] | None) -> ColumnMap:
        """Build from ``field=Column`` strings (the CLI's ``--column``) or a dict."""
        if pairs is None:
            return cls()
        items = pairs.items() if isinstance(pairs, Mapping) else [_split_pair(p) for p in pairs]
        names: dict[str, str] = {}
        for key, column in items:
            if key not in FIELDS:
                raise FeedColumnError(
                    f"unknown product field {key!r} in column mapping; expected one of {', '.join(FIELDS)}"
                )
            names[key] = column
        return cls(**names)

    def resolve(self, columns: Sequence[str], *, answers: Collection[str] = ()) -> ColumnMap:
        """Match the fields to the feed's actual columns.

        Args:
            columns: Column names found in the feed (header, schema or first JSON object).
            answers: Columns holding the answer (a label): never read as a product field, even
                where the name is a field's alias (a ``category`` column is otherwise the
                seller's category).

        Returns:
            A map whose every field is either an existing column or ``None`` (absent).

        Raises:
            FeedColumnError: A column named by the user (tag columns included) is missing, or
                the feed has neither a text column nor an image column.
        """
        columns = [c for c in columns if c not in answers]
        found: dict[str, str] = {}
        for column in columns:  # the first of two columns spelt alike wins
            found.setdefault(column_key(column), column)
        resolved: dict[str, str | None] = {}
        for key in FIELDS:
            wanted = getattr(self, key)
            if wanted is not None:
                if wanted not in columns:
                    raise FeedColumnError(
                        f"column {wanted!r} (for {key}) is not in the feed; columns found: "
                        f"{', '.join(columns) or '(none)'}"
                    )
                resolved[key] = wanted
            else:
                resolved[key] = next((found[n] for n in DEFAULT_NAMES[key] if n in found), None)
        for attribute, wanted in self.tags.items():
            if wanted not in columns:
                raise FeedColumnError(
                    f"column {wanted!r} (for tag {attribute}) is not in the feed; columns found: "
                    f"{', '.join(columns) or '(none)'}"
                )
        if not any(resolved[k] for k in (*TEXT_FIELDS, "image")):
            raise FeedColumnError(
                "the feed has no title, description, brand, seller_category or image column; "
                f"columns found: {', '.join(columns) or '(none)'}. "
                "Name them with --column title=YourColumn (in Python: columns={'title': 'YourColumn'})"
            )
        return replace(self, **resolved)


def passthrough_columns(keep: Sequence[str], found: Sequence[str], taken: Iterable[str]) -> dict[str, str]:
    """Input column -> output column for the columns copied to the output (``["*"]``: all).

    A kept column whose name the output already uses (``status``, ``google_category_id``...)
    is renamed ``input_<name>`` (``input_input_<name>`` if that is taken too...), with a warning
    naming each rename, so no output column is overwritten or duplicated.

    Raises:
        FeedColumnError: A named column is not in the feed.

    Example:
        >>> passthrough_columns(["*"], ["sku", "status"], taken=["row", "id", "status"])
        {'sku': 'sku', 'status': 'input_status'}
    """
    wanted = list(dict.fromkeys(found)) if "*" in keep else list(dict.fromkeys(keep))
    missing = [c for c in wanted if c not in found]
    if missing:
        raise FeedColumnError(
            f"--keep column(s) {', '.join(missing)} not in the feed; columns found: {', '.join(found)}"
        )
    used = set(taken) | set(wanted)
    out: dict[str, str] = {}
    for column in wanted:
        name = column
        if column in set(taken):
            name = f"input_{column}"
            while name in used:
                name = f"input_{name}"
            used.add(name)
        out[column] = name
    renamed = [f"{c} -> {n}" for c, n in out.items() if c != n]
    if renamed:
        logger.warning(
            "kept input column(s) renamed, as the output already has columns of that name: %s",
            ", ".join(renamed),
        )
    return out


def _split_pair(pair: str) -> tuple[str, str]:
    key, sep, column = pair.partition("=")
    if not sep or not key.strip() or not column:
        raise FeedColumnError(f"expected FIELD=COLUMN (e.g. title=Name), got {pair!r}")
    return key.strip(), column


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from Parquet/pandas
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def row_to_product(row: Mapping[str, Any], columns: ColumnMap, row_number: int) -> Product:
    """Build a :class:`Product` from one raw row; text fields lose any HTML markup
    (:func:`~multimodal_cat.feeds.text.plain_text`), over-long fields are cut.

    Args:
        row: Column name -> value, as read from the feed.
        columns: A resolved :class:`ColumnMap`.
        row_number: 1-based data row number, used as the id when the feed has none.

    Returns:
        The product; ``product.extra["warnings"]`` lists what was changed.
    """
    values: dict[str, str] = {}
    warnings: list[str] = []
    for key in FIELDS:
        column = getattr(columns, key)
        text = _text(row.get(column)).lstrip(BOM) if column else ""  # a BOM from concatenated files
        cap = columns.caps.get(key, DEFAULT_CAPS[key])
        if key == "image" and text[:5].lower() == "data:":
            if len(text) > DATA_URL_CAP:
                warnings.append(
                    f"image data: URL of {len(text):,} characters is over the {DATA_URL_CAP:,} "
                    "allowed (20 MB of image); the image is not used"
                )
                text = ""
            values[key] = text
            continue
        if key in TEXT_FIELDS:
            text = plain_text(text)
        if len(text) > cap:
            warnings.append(f"{key} truncated from {len(text):,} to {cap:,} characters")
            text = text[:cap]
        values[key] = text
    return Product(
        id=values["id"].strip() or str(row_number),
        title=values["title"],
        description=values["description"],
        brand=values["brand"],
        seller_category=values["seller_category"],
        image_ref=values["image"].strip(),
        extra={"warnings": warnings},
    )


def read_products(
    feed: str | Path, columns: ColumnMap | Iterable[str] | None = None, *, format: str | None = None
) -> Iterator[tuple[int, Product | None, str | None]]:
    """Stream a feed file as ``(row number, product, error)``: the product is ``None`` and
    ``error`` says why when a record cannot be read. Images are not loaded here.

    Example:
        >>> for number, product, error in read_products("examples/products.csv"):  # doctest: +SKIP
        ...     print(number, product.title if product else error)
    """
    from multimodal_cat.feeds.read import FeedReader

    mapping = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    with FeedReader(feed, format=format) as reader:
        resolved = mapping.resolve(reader.columns)
        for row in reader:
            if row.error:
                yield row.number, None, row.error
            else:
                yield row.number, row_to_product(row.values, resolved, row.number), None
