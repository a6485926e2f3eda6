"""A predictor without a model, for dry runs of a feed (``--dry-run``) and for tests.

It checks the plumbing (reading, images, output, resume) at full speed: the "category" is
the seller category, else the title's last word, so the output is deterministic. Its categories
are placeholders outside any tree: :attr:`DryRunPredictor.taxonomy` is an empty tree, and
``top_k`` and ``min_confidence`` change nothing.

Example:
    >>> from multimodal_cat.products import Product
    >>> DryRunPredictor().predict([Product(id="1", title="Red Ceramic Mug")])[0].category_id
    'dry-run/mug'
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from multimodal_cat.predictions import CategoryScore, Prediction, TagScore
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy

if TYPE_CHECKING:
    import numpy as np


class DryRunPredictor:
    """Deterministic stand-in that keeps the :class:`~multimodal_cat.predictors.base.Predictor`
    contract."""

    def __init__(self) -> None:
        self.taxonomy = Taxonomy([], name="dry-run")
        self.classes_: list[str] = []

    def predict(
        self, products: Sequence[Product], *, top_k: int = 5, min_confidence: float | None = None
    ) -> list[Prediction]:
        """One placeholder prediction per product, in order."""
        return [self._one(p) for p in products]

    def predict_proba(self, products: Sequence[Product]) -> np.ndarray:
        """An empty (n_products, 0) array: a dry run has no classes to score."""
        import numpy as np  # only here: a dry run stays light

        return np.zeros((len(products), 0), dtype=np.float32)

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
