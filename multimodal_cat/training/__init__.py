"""Training: datasets from feeds, collators, recipes, metrics, and the ``train`` command's run.

Names are imported on first use, so ``multimodal_cat.training.arguments`` (what
``multimodal-cat train --help`` reads) loads without torch.

Example:
    >>> from multimodal_cat.training import build_dataset, MultimodalCatCollator, build_compute_metrics
"""

from __future__ import annotations

from multimodal_cat._lazy import lazy_exports

_EXPORTS = {
    "multimodal_cat.training.arguments": ("DataArguments", "ModelArguments", "parse_train_args"),
    "multimodal_cat.training.collator": ("EmbeddingCollator", "MultimodalCatCollator"),
    "multimodal_cat.training.data": ("build_dataset", "embedding_dataset"),
    "multimodal_cat.training.errors": ("TrainingInputError",),
    "multimodal_cat.training.metrics": (
        "build_compute_metrics",
        "category_metrics",
        "hierarchical_prf",
        "per_level_accuracy",
        "tag_metrics",
        "tag_predictions",
    ),
    "multimodal_cat.training.recipes": ("END_TO_END", "FROZEN_HEAD", "Recipe", "recipe_for"),
    "multimodal_cat.training.run": ("CardTrainer", "ModelCardCallback", "train_on_feed"),
    "multimodal_cat.training.sampling": ("add_input_views", "repeat_imaged_rows"),
    "multimodal_cat.training.tags": ("infer_tag_groups",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
