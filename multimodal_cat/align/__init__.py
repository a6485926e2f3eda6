"""Alignment between taxonomy trees and zero-shot categorization into any tree.

Example:
    >>> from multimodal_cat.align import MappingAligner, ZeroShotCategorizer
    >>> aligner = MappingAligner(text_encoder="minilm")  # doctest: +SKIP
    >>> result = aligner.align(Taxonomy.load("shopify"), Taxonomy.load("google"))  # doctest: +SKIP
"""

from __future__ import annotations

from multimodal_cat.align.candidates import FEATURE_NAMES
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.align.infer import AlignmentResult, MappingAligner, ReviewItem
from multimodal_cat.align.rerank import DEFAULT_WEIGHTS, ReRanker
from multimodal_cat.align.zero_shot import ZeroShotCategorizer

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURE_NAMES",
    "AlignmentResult",
    "MappingAligner",
    "ReRanker",
    "ReviewItem",
    "TreeView",
    "ZeroShotCategorizer",
]
