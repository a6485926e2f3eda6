"""Hugging Face-native product categorizer: config, model, processor, label space.

``import multimodal_cat`` registers the model with ``AutoConfig`` / ``AutoModel`` /
``AutoProcessor`` and the ``"product-categorization"`` pipeline task, each when transformers
first needs it (:mod:`multimodal_cat.modeling.auto`), so ``AutoModel.from_pretrained(folder)``
loads a saved categorizer. Names are imported on first use, so ``LabelSpace`` loads without torch.

Example:
    >>> from multimodal_cat.modeling import MultimodalCatModel, LabelSpace
    >>> space = LabelSpace.from_paths(["Apparel > Shoes", "Apparel > Shirts"])
    >>> model = MultimodalCatModel.from_encoders(text="minilm", taxonomy=space)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multimodal_cat._lazy import lazy_exports

if TYPE_CHECKING:
    from multimodal_cat.modeling.auto import register
    from multimodal_cat.modeling.configuration import MultimodalCatConfig
    from multimodal_cat.modeling.labels import LabelSpace, TagGroup
    from multimodal_cat.modeling.modeling import MultimodalCatModel
    from multimodal_cat.modeling.outputs import MultimodalCatOutput
    from multimodal_cat.modeling.processing import MultimodalCatProcessor

_WHERE = {
    "LabelSpace": "multimodal_cat.modeling.labels",
    "MultimodalCatConfig": "multimodal_cat.modeling.configuration",
    "MultimodalCatModel": "multimodal_cat.modeling.modeling",
    "MultimodalCatOutput": "multimodal_cat.modeling.outputs",
    "MultimodalCatProcessor": "multimodal_cat.modeling.processing",
    "TagGroup": "multimodal_cat.modeling.labels",
    "register": "multimodal_cat.modeling.auto",
}

__all__ = [
    "LabelSpace",
    "MultimodalCatConfig",
    "MultimodalCatModel",
    "MultimodalCatOutput",
    "MultimodalCatProcessor",
    "TagGroup",
    "register",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
