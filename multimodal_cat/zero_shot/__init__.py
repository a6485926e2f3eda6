"""The zero-shot engine: place products in any tree with no training.

Modules, in data-flow order: :mod:`.product_text` (a product's title, head phrase and noun),
:mod:`.lexical` (name matches, path-word overlap), :mod:`.search` (scores over whole paths),
:mod:`.store` (category matrices, shipped for the default encoder), :mod:`.calibration`
(temperature, ECE), :mod:`.confidence` (the chance an answer is right, calibrated on the
feed's own scores), :mod:`.reviewed` (a tree's calibration from reviewed answers, stored),
:mod:`.kind` (a product-kind head that vetoes absurd branches), :mod:`.backoff` (an unsure leaf
answers its sure branch), :mod:`.adapt` (label-free smoothing over a feed), :mod:`.tags`
(attribute values from Shopify's vocabularies). :class:`~multimodal_cat.align.ZeroShotCategorizer` is the predictor over them.

Example:
    >>> from multimodal_cat.zero_shot import head_phrase
    >>> head_phrase("Ceramic Plant Pot with Drainage Tray")
    'Ceramic Plant Pot'
"""

from __future__ import annotations

from multimodal_cat.zero_shot.backoff import back_off
from multimodal_cat.zero_shot.calibration import (
    DEFAULT_TEMPERATURE,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from multimodal_cat.zero_shot.product_text import head_noun, head_phrase, product_text
from multimodal_cat.zero_shot.reviewed import calibrate_from_reviews
from multimodal_cat.zero_shot.search import DEFAULT_WEIGHTS, CategoryIndex, ScoreWeights
from multimodal_cat.zero_shot.tags import ZeroShotTagger

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_WEIGHTS",
    "CategoryIndex",
    "ScoreWeights",
    "ZeroShotTagger",
    "back_off",
    "calibrate_from_reviews",
    "expected_calibration_error",
    "fit_temperature",
    "head_noun",
    "head_phrase",
    "product_text",
    "softmax",
]
