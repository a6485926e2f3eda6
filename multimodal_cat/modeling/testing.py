"""Tiny random models for tests: build a whole categorizer offline in well under a second.

Example:
    >>> model = tiny_model(vision="vit", text="bert")
    >>> model.config.num_categories
    7
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, BertConfig, Dinov2Config, ViTConfig

from multimodal_cat.modeling.configuration import MultimodalCatConfig
from multimodal_cat.modeling.labels import LabelSpace
from multimodal_cat.modeling.modeling import MultimodalCatModel
from multimodal_cat.modeling.processing import MultimodalCatProcessor

TINY_PATHS = (
    "Apparel > Shoes > Sneakers",
    "Apparel > Shoes > Boots",
    "Apparel > Shirts",
    "Home > Kitchen",
)
TINY_TAGS = {"color": ["red", "blue", "black"], "material": ["cotton", "leather"]}
TINY_WORDS = [
    "red",
    "blue",
    "black",
    "shoe",
    "shoes",
    "sneaker",
    "sneakers",
    "boot",
    "boots",
    "shirt",
    "cotton",
    "leather",
    "pan",
    "kitchen",
    "nike",
]
IMAGE_SIZE = 30


def tiny_label_space() -> LabelSpace:
    """Seven nodes over two roots: three levels under Apparel, two under Home."""
    return LabelSpace.from_paths(TINY_PATHS, name="tiny")


def tiny_vision_config(kind: str = "vit") -> Any:
    """A 2-layer, hidden-32 ViT or DINOv2 config for 30 px images."""
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    if kind == "dinov2":
        return Dinov2Config(image_size=IMAGE_SIZE, patch_size=10, **common)
    if kind == "vit":
        return ViTConfig(image_size=IMAGE_SIZE, patch_size=10, **common)
    raise ValueError(f"Unknown tiny vision kind {kind!r}; expected 'vit' or 'dinov2'.")


def tiny_text_config() -> BertConfig:
    """A 2-layer, hidden-32 BERT config over the tiny vocabulary."""
    return BertConfig(
        vocab_size=len(TINY_WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )


def tiny_config(
    vision: str | None = "vit", text: str | None = "bert", **kwargs: Any
) -> MultimodalCatConfig:
    """Config with tiny towers (``vision``: vit/dinov2/None, ``text``: bert/None), tiny labels and tags."""
    kwargs.setdefault("projection_dim", 16)
    kwargs.setdefault("fusion_hidden_dim", 24)
    kwargs.setdefault("tags", TINY_TAGS)
    kwargs.setdefault("multi_valued_tags", ("material",))
    return MultimodalCatConfig.from_vision_text_configs(
        tiny_vision_config(vision) if vision else None,
        tiny_text_config() if text else None,
        labels=kwargs.pop("labels", tiny_label_space()),
        **kwargs,
    )


def tiny_model(
    vision: str | None = "vit", text: str | None = "bert", **kwargs: Any
) -> MultimodalCatModel:
    """A random tiny :class:`MultimodalCatModel` in eval mode."""
    return MultimodalCatModel(tiny_config(vision, text, **kwargs)).eval()


def tiny_tokenizer(folder: str | Path) -> Any:
    """A BERT WordPiece tokenizer over the tiny vocabulary, written to and loaded from ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    return AutoTokenizer.from_pretrained(str(folder))


def tiny_processor(folder: str | Path, **kwargs: Any) -> MultimodalCatProcessor:
    """Processor with the tiny tokenizer and a 30 px image processor."""
    from transformers import ViTImageProcessor  # imported here: it warns when torchvision is absent

    image_processor = ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return MultimodalCatProcessor(image_processor, tiny_tokenizer(folder), **kwargs)
