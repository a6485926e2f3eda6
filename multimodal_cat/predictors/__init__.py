"""Predictors: everything that turns products into predictions, behind one contract.

- :mod:`.base`: the :class:`Predictor` protocol (``taxonomy``, ``predict``, ``predict_proba``);
- :mod:`.checkpoint`: a trained checkpoint (:class:`ModelPredictor`, cached tower outputs);
- :mod:`.zero_shot` with :mod:`.image_text`: any tree with no training (:class:`ZeroShotCategorizer`);
- :mod:`.dry_run`: no model, for dry runs and tests (:class:`DryRunPredictor`);
- :mod:`.backoff`: the coarser-category back-off (``min_confidence``) of a leaf predictor;
- :mod:`.pipeline`: the ``transformers.pipeline("product-categorization")`` task over a
  checkpoint (:class:`ProductCategorizationPipeline`);
- :mod:`.build`: the predictor ``multimodal-cat categorize`` runs (:func:`build_predictor`).

The checkpoint and zero-shot predictors load torch and the encoders: they are imported on
first use.

Example:
    >>> from multimodal_cat.predictors import DryRunPredictor
    >>> from multimodal_cat.products import Product
    >>> DryRunPredictor().predict([Product(title="Blue denim jacket")])[0].category_path
    'Dry run > jacket'
"""

from __future__ import annotations

from multimodal_cat._lazy import lazy_exports
from multimodal_cat.predictors.base import Predictor
from multimodal_cat.predictors.dry_run import DryRunPredictor

_LAZY = {
    "ModelPredictor": "multimodal_cat.predictors.checkpoint",
    "TowerEmbedder": "multimodal_cat.predictors.checkpoint",
    "ZeroShotCategorizer": "multimodal_cat.predictors.zero_shot",
    "ImageTextEncoder": "multimodal_cat.predictors.image_text",
    "build_predictor": "multimodal_cat.predictors.build",
    "ProductCategorizationPipeline": "multimodal_cat.predictors.pipeline",
}

__all__ = ["DryRunPredictor", "Predictor", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
