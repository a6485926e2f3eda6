"""Alignment between taxonomy trees: infer the mapping from one tree to another.

Zero-shot categorization of products lives in :mod:`multimodal_cat.predictors.zero_shot`.

Example:
    >>> from multimodal_cat.align import MappingAligner
    >>> aligner = MappingAligner(text_encoder="minilm")  # doctest: +SKIP
    >>> result = aligner.align(Taxonomy.load("shopify"), Taxonomy.load("google"))  # doctest: +SKIP
    >>> result.details["mode"], result.details["mode_reason"]  # doctest: +SKIP
    ('same-language', 'both trees are English: names and shared words are compared directly')
"""

from __future__ import annotations

from multimodal_cat.align.candidates import FEATURE_NAMES
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.align.infer import AlignmentResult, MappingAligner, ReviewItem
from multimodal_cat.align.language import TreeLanguage, tree_language
from multimodal_cat.align.mode import LanguageWarning
from multimodal_cat.align.rerank import DEFAULT_WEIGHTS, ReRanker

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURE_NAMES",
    "AlignmentResult",
    "LanguageWarning",
    "MappingAligner",
    "ReRanker",
    "ReviewItem",
    "TreeLanguage",
    "TreeView",
    "tree_language",
]
