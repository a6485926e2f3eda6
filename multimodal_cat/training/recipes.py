"""Default settings for the two ways to train: a head on frozen towers, or end to end.

A head on frozen towers has well under a million weights and sees each product as two fixed
vectors, so it wants what a small classifier wants: a large learning rate, large batches and
several epochs. Fine-tuning the towers wants the opposite (Hugging Face's ``TrainingArguments``
defaults). ``multimodal-cat train`` starts from the recipe that fits ``--freeze-encoders``; any
flag the user gives wins over it.

The frozen-head recipe is the setting that ``benchmarks/fashion_model.py`` chose by 4-fold
cross-validation on the fashion data (never on its test split).

Example:
    >>> recipe = recipe_for(frozen_encoders=True)
    >>> recipe.training["learning_rate"], recipe.model["dropout"]
    (0.002, 0.3)
    >>> recipe.training_flags()[:2]
    ['--learning_rate', '0.002']

    In Python, unpack a recipe into ``TrainingArguments`` and the model constructor:

    >>> args = TrainingArguments("out", **FROZEN_HEAD.training)  # doctest: +SKIP
    >>> model = MultimodalCatModel.from_encoders(  # doctest: +SKIP
    ...     "dinov2-small", "minilm", taxonomy=tree, freeze_encoders=True, **FROZEN_HEAD.model
    ... )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["END_TO_END", "FROZEN_HEAD", "Recipe", "recipe_for"]


def _frozen(values: dict[str, Any]) -> MappingProxyType:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class Recipe:
    """Named defaults: ``training`` for ``TrainingArguments``, ``model`` for the model config."""

    name: str
    training: MappingProxyType = field(default_factory=lambda: _frozen({}))
    model: MappingProxyType = field(default_factory=lambda: _frozen({}))

    def training_flags(self) -> list[str]:
        """The training defaults as command-line flags (put them first: later flags win)."""
        flags: list[str] = []
        for name, value in self.training.items():
            flags += [f"--{name}", str(value)]
        return flags

    def describe(self) -> str:
        """One line for the log: which defaults this recipe sets."""
        settings = {**self.training, **self.model}
        listed = ", ".join(f"{name}={value}" for name, value in settings.items())
        return f"{self.name} recipe: {listed or 'library defaults'}"


FROZEN_HEAD = Recipe(
    name="frozen-head",
    training=_frozen(
        {
            "learning_rate": 2e-3,
            "num_train_epochs": 10,
            "per_device_train_batch_size": 512,
            "per_device_eval_batch_size": 512,
            "weight_decay": 0.01,
            "warmup_steps": 0.05,  # a float below 1 is a share of the steps
            "lr_scheduler_type": "cosine",
        }
    ),
    model=_frozen(
        {
            "projection_dim": 256,
            "fusion_hidden_dim": 512,
            "dropout": 0.3,
            "label_smoothing": 0.1,
            "tag_loss_weight": 0.5,
        }
    ),
)

END_TO_END = Recipe(
    name="end-to-end",
    model=_frozen(
        {
            "projection_dim": 512,
            "fusion_hidden_dim": 1024,
            "dropout": 0.1,
            "label_smoothing": 0.0,
            "tag_loss_weight": 1.0,
        }
    ),
)


def recipe_for(frozen_encoders: bool) -> Recipe:
    """:data:`FROZEN_HEAD` when the towers are frozen, else :data:`END_TO_END`."""
    return FROZEN_HEAD if frozen_encoders else END_TO_END
