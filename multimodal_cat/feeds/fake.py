"""A predictor without a model, for dry runs of a feed (``--dry-run``) and for tests.

It checks the plumbing (reading, images, output, resume) at full speed: the "category" is
the seller category, else the title's last word, so the output is deterministic.

Example:
    >>> from multimodal_cat.products import Product
    >>> DryRunPredictor().predict([Product(id="1", title="Red Ceramic Mug")])[0].category_id
    'dry-run/mug'
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from multimodal_cat.predictions import CategoryScore, Prediction, TagScore
from multimodal_cat.products import Product


class DryRunPredictor:
    """Deterministic stand-in with the predictor protocol ``predict(products) -> predictions``."""

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        """One placeholder prediction per product, in order."""
        return [self._one(p) for p in products]

    @staticmethod
    def _one(product: Product) -> Prediction:
        words = (product.seller_category or product.title or product.description).split()
        word = words[-1].lower().strip(".,;:!?\"'") if words else "image-only"
        category_id = f"dry-run/{word}"
        path = f"Dry run > {word}"
        confidence = round(0.5 + (zlib.crc32(category_id.encode()) % 500) / 1000, 3)
        tags = [TagScore("has_image", str(product.has_image).lower(), 1.0)]
        return Prediction(
            category_id=category_id,
            category_path=path,
            confidence=confidence,
            alternatives=[CategoryScore(category_id, path, confidence)],
            tags=tags,
        )
