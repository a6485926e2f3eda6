"""Product records: what a catalog team hands to the library.

A :class:`Product` is one row of a seller feed after its columns are resolved. It carries
text fields, an optional image reference (path or URL) and, once loaded, the image itself.

Example:
    >>> p = Product(id="42", title="Nike Men Red Running Shoes")
    >>> p.has_text
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class Product:
    """One product to categorize.

    Attributes:
        id: The seller's identifier for the row (kept as text).
        title: Product title; may be empty.
        description: Longer free text; may be empty.
        brand: Optional brand name.
        seller_category: The category the seller gave, in their own words or ids.
        image_ref: Where the image comes from: a local path or an http(s) URL.
        image: The decoded RGB image, once loaded; ``None`` when absent or unreadable.
        extra: Any other columns, kept so they can be written back to the output.
    """

    id: str = ""
    title: str = ""
    description: str = ""
    brand: str = ""
    seller_category: str = ""
    image_ref: str = ""
    image: Image.Image | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_text(self) -> bool:
        """True when any text field holds non-blank text."""
        return any(s.strip() for s in (self.title, self.description, self.brand))

    @property
    def has_image(self) -> bool:
        """True when a decoded image is attached."""
        return self.image is not None


NO_INPUT = "no usable text (title, description and brand are empty) and no image"


def unusable_image(has_text: bool, problem: str) -> tuple[str | None, str | None]:
    """``(warning, error)`` for a product whose image could not be used: with text it is
    answered from the text (a warning); without, it cannot be answered (an error).

    Example:
        >>> unusable_image(True, "file not found")
        ('file not found; predicted from text only', None)
    """
    if has_text:
        return f"{problem}; predicted from text only", None
    return None, f"no usable text and the image could not be used ({problem})"
