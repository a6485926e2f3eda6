"""Hugging Face-native product categorizer: config, model, processor, label space.

Importing this package registers the model with ``AutoConfig`` / ``AutoModel`` (and the
processor with ``AutoProcessor``), idempotently, so ``AutoModel.from_pretrained(folder)`` loads a
saved categorizer.

Example:
    >>> from multimodal_cat.modeling import MultimodalCatModel, LabelSpace
    >>> space = LabelSpace.from_paths(["Apparel > Shoes", "Apparel > Shirts"])
    >>> model = MultimodalCatModel.from_encoders(text="minilm", taxonomy=space)  # doctest: +SKIP
"""

from __future__ import annotations

from multimodal_cat.modeling.configuration import MultimodalCatConfig
from multimodal_cat.modeling.labels import LabelSpace, TagGroup
from multimodal_cat.modeling.modeling import MultimodalCatModel
from multimodal_cat.modeling.outputs import MultimodalCatOutput
from multimodal_cat.modeling.processing import MultimodalCatProcessor

__all__ = [
    "LabelSpace",
    "MultimodalCatConfig",
    "MultimodalCatModel",
    "MultimodalCatOutput",
    "MultimodalCatProcessor",
    "TagGroup",
    "register",
]


def register() -> None:
    """Register the classes with the ``transformers`` Auto classes (safe to call repeatedly)."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    AutoConfig.register(MultimodalCatConfig.model_type, MultimodalCatConfig, exist_ok=True)
    AutoModel.register(MultimodalCatConfig, MultimodalCatModel, exist_ok=True)
    AutoProcessor.register(MultimodalCatConfig, MultimodalCatProcessor, exist_ok=True)


register()
