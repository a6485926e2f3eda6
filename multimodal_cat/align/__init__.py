"""Alignment between taxonomy trees: infer the mapping from one tree to another.

Zero-shot categorization of products lives in :mod:`multimodal_cat.predictors.zero_shot`.

Example:
    >>> from multimodal_cat.align import MappingAligner
    >>> aligner = MappingAligner(text_encoder="minilm")  # doctest: +SKIP
    >>> result = aligner.align(Taxonomy.load("shopify"), Taxonomy.load("google"))  # doctest: +SKIP
"""

from __future__ import annotations

from multimodal_cat.align.candidates import FEATURE_NAMES
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.align.infer import AlignmentResult, MappingAligner, ReviewItem
from multimodal_cat.align.rerank import DEFAULT_WEIGHTS, ReRanker

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURE_NAMES",
    "AlignmentResult",
    "MappingAligner",
    "ReRanker",
    "ReviewItem",
    "TreeView",
]
