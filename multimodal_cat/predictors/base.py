"""The :class:`Predictor` contract: what every predictor offers the feed job and the Categorizer.

A predictor turns products (records whose images, if any, are already decoded) into one
:class:`~multimodal_cat.predictions.Prediction` each, in order. It reads no files and fetches
nothing: loading images is the caller's job (the feed job's image loader, or
:func:`multimodal_cat.categorizer.to_products`), so an image that failed to load is never
tried a second time behind the caller's back. Mapping predictions into other trees is not a
predictor's job either: see :class:`~multimodal_cat.mapping.apply.CategoryMapper`.

The predictors shipped with the library: :class:`~multimodal_cat.predictors.checkpoint.ModelPredictor`
(a trained checkpoint), :class:`~multimodal_cat.predictors.zero_shot.ZeroShotCategorizer` (any
tree, no training) and :class:`~multimodal_cat.predictors.dry_run.DryRunPredictor` (no model).

Example:
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> isinstance(DryRunPredictor(), Predictor)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: the contract imports nothing heavy
    import numpy as np

    from multimodal_cat.predictions import Prediction
    from multimodal_cat.products import Product
    from multimodal_cat.taxonomy import Taxonomy


@runtime_checkable
class Predictor(Protocol):
    """One prediction per product, in order, in the tree :attr:`taxonomy`.

    Attributes:
        taxonomy: The tree whose categories the predictions name.
    """

    taxonomy: Taxonomy

    def predict(
        self, products: Sequence[Product], *, top_k: int = 5, min_confidence: float | None = None
    ) -> list[Prediction]:
        """One :class:`Prediction` per product, with ``top_k`` alternatives.

        ``min_confidence`` backs off from the best leaf to the deepest category on its path
        whose probability reaches it (``None``: keep the leaf).
        """
        ...

    def predict_proba(self, products: Sequence[Product]) -> np.ndarray:
        """Probabilities (n_products, n_classes) over the predictor's ``classes_``."""
        ...


def reads_images(predictor: object) -> bool:
    """Whether ``predictor`` reads product photos (its ``reads_images``; a predictor that does
    not say is taken to read them). Callers load no image for one that does not: the zero-shot
    engine without an image-text model, a checkpoint without an image tower.

    Example:
        >>> from multimodal_cat.predictors import DryRunPredictor
        >>> reads_images(DryRunPredictor()), reads_images(object())
        (True, True)
    """
    return bool(getattr(predictor, "reads_images", True))
