"""The texts of a product that zero-shot search reads: title, head phrase, head noun, full text.

A title such as ``"Gaiam Yoga Mat 10 mm with Carrying Strap"`` names the product before
``with`` / ``for`` / a dash or a comma, and its accessories after: the *head phrase*
(``"Gaiam Yoga Mat 10 mm"``) is the product, and its last words (the *head noun*,
``"Yoga Mat"`` once units and numbers are dropped) say what kind of product it is. Lexical
matches look at the head phrase only, with the brand's words removed (so a brand's product
line called "Bricks" does not vote for Bricks & Concrete Blocks).

Example:
    >>> head_phrase("Gaiam Yoga Mat 10 mm with Carrying Strap")
    'Gaiam Yoga Mat 10 mm'
    >>> head_noun("Gaiam Yoga Mat 10 mm with Carrying Strap")
    'Yoga Mat'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from multimodal_cat.errors import InputTypeError
from multimodal_cat.products import Product

# What follows these names an accessory, a compatible device, a size or a variant. Commas
# are not cut (titles list attributes with them: "Festive, Party, Casual Blue Clutch"), but a
# short tail after the last comma is ("Wireless Mouse, Grey").
_CUT = re.compile(
    r"\s+(?:for|with|w/|in|by|from|compatible|including|incl\.?)\s+|\s+[-|\u2013]\s+|[(\[;]|\s+\+\s+",
    re.IGNORECASE,
)
_SHORT_TAIL = re.compile(r",\s*(?:\S+\s*){1,2}$")
_UNITS = frozenset(
    [
        "mm",
        "cm",
        "m",
        "in",
        "inch",
        "inches",
        "ft",
        "oz",
        "lb",
        "lbs",
        "kg",
        "g",
        "ml",
        "l",
        "qt",
        "pcs",
        "pc",
        "piece",
        "pieces",
        "pack",
        "set",
        "size",
        "x",
        "v",
        "w",
        "mah",
        "gb",
        "tb",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019&-]*")
_HEAD_WORDS = 2


def head_phrase(title: str) -> str:
    """The part of ``title`` before its first accessory / variant marker (whole title if short)."""
    head = _SHORT_TAIL.sub("", _CUT.split(title, maxsplit=1)[0].strip()).strip(" ,")
    return head if len(head) >= 3 else title.strip()


def head_noun(title: str) -> str:
    """The last words of the head phrase, units dropped: what kind of product it is."""
    tokens = [w for w in _WORD.findall(head_phrase(title)) if w.lower() not in _UNITS]
    return " ".join(tokens[-_HEAD_WORDS:]) if tokens else title.strip()


def without_brand(text: str, brand: str) -> str:
    """``text`` with the words of ``brand`` removed (case-insensitive), when that leaves words."""
    brand_words = {w.lower() for w in _WORD.findall(brand or "")}
    if not brand_words:
        return text
    kept = [w for w in text.split() if w.lower().strip(",.:;()") not in brand_words]
    return " ".join(kept) if kept else text


@dataclass(frozen=True)
class ProductText:
    """The texts of one product, as zero-shot search reads them.

    Attributes:
        title: the title (a plain string item is its own title).
        full: title + description (equal to ``title`` without a description).
        head: :func:`head_phrase` of the title.
        noun: :func:`head_noun` of the title.
        lexical: the head phrase without the brand's words, for lexical matches.
        seller_category: the seller's own category text, when it holds words.
    """

    title: str
    full: str
    head: str
    noun: str
    lexical: str
    seller_category: str = ""


def product_text(item: str | Product) -> ProductText:
    """The :class:`ProductText` of a string or a :class:`~multimodal_cat.products.Product`.

    Raises:
        TypeError: ``item`` is neither.
    """
    if isinstance(item, str):
        title, description, brand, seller = item, "", "", ""
    elif isinstance(item, Product):
        title = item.title or item.description or item.brand
        description = item.description if item.title else ""
        brand, seller = item.brand, item.seller_category
    else:
        raise InputTypeError(f"expected a str or a Product; got {type(item).__name__}")
    title = title.strip()
    full = " ".join(t for t in (title, description.strip()) if t)
    seller = seller.strip() if _WORD.search(seller or "") else ""
    return ProductText(
        title=title,
        full=full,
        head=head_phrase(title),
        noun=head_noun(title),
        lexical=without_brand(head_phrase(title), brand),
        seller_category=seller,
    )


def product_texts(items: Sequence[str | Product]) -> list[ProductText]:
    """:func:`product_text` of each item."""
    return [product_text(item) for item in items]
