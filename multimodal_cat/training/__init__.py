"""Training utilities: datasets from feeds, collators, metrics for the ``Trainer``.

Example:
    >>> from multimodal_cat.training import build_dataset, MultimodalCatCollator, build_compute_metrics
"""

from __future__ import annotations

from multimodal_cat.training.collator import EmbeddingCollator, MultimodalCatCollator
from multimodal_cat.training.data import (
    DatasetReport,
    EmbeddingDataset,
    FeedColumns,
    build_dataset,
    embedding_dataset,
    infer_tag_groups,
    read_table,
)
from multimodal_cat.training.metrics import (
    build_compute_metrics,
    category_metrics,
    hierarchical_prf,
    per_level_accuracy,
    tag_metrics,
    tag_predictions,
)
from multimodal_cat.training.recipes import END_TO_END, FROZEN_HEAD, Recipe, recipe_for
from multimodal_cat.training.sampling import repeat_imaged_rows

__all__ = [
    "END_TO_END",
    "FROZEN_HEAD",
    "DatasetReport",
    "EmbeddingCollator",
    "EmbeddingDataset",
    "FeedColumns",
    "MultimodalCatCollator",
    "build_compute_metrics",
    "build_dataset",
    "category_metrics",
    "embedding_dataset",
    "hierarchical_prf",
    "infer_tag_groups",
    "per_level_accuracy",
    "read_table",
    "Recipe",
    "recipe_for",
    "repeat_imaged_rows",
    "tag_metrics",
    "tag_predictions",
]
