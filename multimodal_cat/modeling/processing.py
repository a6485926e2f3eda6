"""Turn products into model inputs: an image processor and a tokenizer behind one call.

The text a product is tokenized from is built by a template over its fields (title,
description, brand, seller category and any extra column), e.g. ``"{title}. {brand}. {description}"``;
separators left by empty fields are removed. Rows without an image get a blank image and
``image_mask = 0``; rows without text get ``text_mask = 0``.

Example:
    >>> import tempfile
    >>> from transformers import ViTImageProcessor
    >>> from multimodal_cat.modeling.testing import tiny_tokenizer
    >>> tokenizer = tiny_tokenizer(tempfile.mkdtemp())  # or AutoTokenizer.from_pretrained(...)
    >>> processor = MultimodalCatProcessor(ViTImageProcessor(), tokenizer)
    >>> batch = processor([Product(title="Red sneakers", brand="Nike")])
    >>> sorted(batch)  # no product has an image: no pixel_values, image_mask all 0
    ['attention_mask', 'image_mask', 'input_ids', 'text_mask', 'token_type_ids']
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, BatchFeature, ProcessorMixin
from transformers.utils import cached_file

from multimodal_cat.errors import ConfigurationError
from multimodal_cat.framing import DEFAULT_FIT, check_fit, fit_image
from multimodal_cat.imaging import to_rgb, try_open_image
from multimodal_cat.products import Product

DEFAULT_TEXT_TEMPLATE = "{title}. {brand}. {description}"
_SEPARATOR_RUN = re.compile(r"([.;,|:])(\s*[.;,|:])+")
_TEXT_FIELDS = ("title", "description", "brand", "seller_category")


def render_text(template: str, fields: Mapping[str, Any]) -> str:
    """Fill ``template`` with ``fields``; missing or empty fields leave no stray separators.

    Example:
        >>> render_text("{title}. {brand}. {description}", {"title": "Red shoe", "description": "Soft"})
        'Red shoe. Soft'
    """
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    values = {name: str(fields.get(name) or "").strip() for name in names}
    text = template.format_map(values)
    text = _SEPARATOR_RUN.sub(r"\1", re.sub(r"\s+", " ", text))
    return text.strip(" .;,|:")


def check_template(template: Any) -> str:
    """Refuse a text template that is more than field names between literal text.

    Only ``{name}`` is allowed: no format spec (``{title:>999999999}`` would exhaust memory),
    no conversion, no indexing or attribute access, no positional ``{0}`` or ``{}``.

    Example:
        >>> check_template("{title}. {brand}")
        '{title}. {brand}'
        >>> check_template("{title:>9}")
        Traceback (most recent call last):
        ...
        multimodal_cat.errors.ConfigurationError: text_template: expected field names only, like {title}; found '{title:>9}'
    """
    if not isinstance(template, str):
        raise ConfigurationError(f"text_template: expected text; found {type(template).__name__}")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ConfigurationError(f"text_template: {err} in {template[:80]!r}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigurationError(
                f"text_template: expected field names only, like {{title}}; found {shown[:80]!r}"
            )
    return template


def _fields(product: Product | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(product, Product):
        fields = dict(product.extra)
        fields.update({name: getattr(product, name) for name in _TEXT_FIELDS})
        fields["image"], fields["image_ref"] = product.image, product.image_ref
        return fields
    if isinstance(product, Mapping):
        return dict(product)
    raise TypeError(f"Expected Product objects or dicts; got {type(product).__name__}.")


def _image(fields: Mapping[str, Any]) -> Image.Image | None:
    image = fields.get("image")
    if isinstance(image, Image.Image):
        return to_rgb(image)
    ref = image if isinstance(image, str) else fields.get("image_ref") or fields.get("image_path")
    return try_open_image(str(ref)) if ref else None


class MultimodalCatProcessor(ProcessorMixin):
    """Pairs an image processor and a tokenizer; builds a product's text from a template.

    Either component may be ``None`` for a text-only or image-only model.

    Args:
        image_processor: Any Hugging Face image processor (ViT, DINOv2, CLIP...), or ``None``.
        tokenizer: Any Hugging Face tokenizer, or ``None``.
        text_template: ``str.format`` template over product fields.
        max_length: Token limit for the text.
        image_fit: How a photo that is not square reaches the image processor: ``"pad"``
            (letterboxed onto a square, the whole product kept) or ``"crop"`` (the image
            processor's own resize and centre crop); see :mod:`multimodal_cat.framing`.
    """

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        text_template: str = DEFAULT_TEXT_TEMPLATE,
        max_length: int = 128,
        image_fit: str = DEFAULT_FIT,
        **kwargs: Any,
    ) -> None:
        self.text_template = check_template(text_template)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigurationError(f"max_length: expected a whole number of tokens >= 1; found {max_length!r}")
        self.max_length = max_length
        self.image_fit = check_fit(image_fit)
        if image_processor is None and tokenizer is None:
            raise ValueError(
                "MultimodalCatProcessor needs an image processor, a tokenizer or both; got neither."
            )
        super().__init__(image_processor, tokenizer, **kwargs)

    def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
        if argument is None:  # an absent modality
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def missing_components(self) -> list[str]:
        """Names of the absent components (``image_processor`` and/or ``tokenizer``)."""
        return [n for n in ("image_processor", "tokenizer") if getattr(self, n) is None]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["missing_components"] = self.missing_components
        return data

    def save_pretrained(
        self, save_directory: str | Path, push_to_hub: bool = False, **kwargs: Any
    ) -> list[str]:
        """Save next to the model (``processor_config.json`` plus the components' own files)."""
        if not self.missing_components:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        if push_to_hub:
            raise NotImplementedError(
                "push_to_hub of a single-modality processor: save, then upload the folder."
            )
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        present = self.tokenizer if self.tokenizer is not None else self.image_processor
        present.save_pretrained(save_directory)
        path = Path(save_directory) / "processor_config.json"
        self.to_json_file(str(path))
        return [str(path)]

    @classmethod
    def from_encoders(
        cls, vision: str | None = None, text: str | None = None, **kwargs: Any
    ) -> MultimodalCatProcessor:
        """The processor matching :meth:`MultimodalCatModel.from_encoders` with the same names.

        Example:
            >>> processor = MultimodalCatProcessor.from_encoders("dinov2-small", "minilm")  # doctest: +SKIP
        """
        from multimodal_cat.encoders import resolve_encoder

        image_processor = (
            AutoImageProcessor.from_pretrained(resolve_encoder(vision)) if vision else None
        )
        tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(text)) if text else None
        return cls(image_processor, tokenizer, **kwargs)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> MultimodalCatProcessor:
        """Load a processor saved by :meth:`save_pretrained` (a folder or a hub id)."""
        config_file = cached_file(
            str(pretrained_model_name_or_path),
            "processor_config.json",
            _raise_exceptions_for_missing_entries=False,
        )
        config = json.loads(Path(config_file).read_text(encoding="utf-8")) if config_file else {}
        missing = config.get("missing_components") or []
        if not missing:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        path = str(pretrained_model_name_or_path)
        image_processor = (
            None if "image_processor" in missing else AutoImageProcessor.from_pretrained(path)
        )
        tokenizer = None if "tokenizer" in missing else AutoTokenizer.from_pretrained(path)
        return cls(
            image_processor,
            tokenizer,
            text_template=config.get("text_template", DEFAULT_TEXT_TEMPLATE),
            max_length=config.get("max_length", 128),
            image_fit=config.get("image_fit", DEFAULT_FIT),
        )

    def texts(self, products: Sequence[Product | Mapping[str, Any]]) -> list[str]:
        """The text of each product after the template."""
        return [render_text(self.text_template, _fields(p)) for p in products]

    def __call__(
        self,
        products: Sequence[Product | Mapping[str, Any]] | None = None,
        *,
        images: Sequence[Image.Image | None] | None = None,
        text: Sequence[str] | None = None,
        return_tensors: str = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Encode products (or parallel ``images`` / ``text`` lists) into model inputs.

        Returns:
            A ``BatchFeature`` with ``pixel_values``, ``input_ids``, ``attention_mask`` (and
            ``token_type_ids`` when the tokenizer makes them), ``image_mask`` and ``text_mask``.
        """
        if products is not None:
            rows = [_fields(p) for p in products]
            images = [_image(f) for f in rows]
            text = [render_text(self.text_template, f) for f in rows]
        if images is None and text is None:
            raise ValueError("Give products, or images and/or text; got nothing to process.")
        size = len(images) if images is not None else len(text)
        data: dict[str, Any] = {}
        if text is not None and self.tokenizer is not None:
            data.update(self.encode_text(list(text)))
            data["text_mask"] = torch.tensor([bool(t and t.strip()) for t in text])
        if images is not None and self.image_processor is not None:
            data.update(self.encode_images(list(images)))
        if len({len(v) for v in data.values()} | {size}) != 1:
            raise ValueError("images and text must have one entry per product.")
        return BatchFeature(data, tensor_type=return_tensors)

    def encode_text(self, text: list[str]) -> dict[str, torch.Tensor]:
        """Tokenize with padding and truncation to ``max_length``."""
        return dict(
            self.tokenizer(
                text, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        )

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        """(n, 3, H, W) model pixels of decoded images, each framed by ``image_fit`` first."""
        framed = [fit_image(to_rgb(image), self.image_fit) for image in images]
        return self.image_processor(images=framed, return_tensors="pt")["pixel_values"]

    def encode_images(self, images: list[Image.Image | None]) -> dict[str, torch.Tensor]:
        """Preprocess images; a missing one becomes a blank image with ``image_mask = 0``."""
        present = [image is not None for image in images]
        real = [image for image in images if image is not None]
        if not real:
            return {"image_mask": torch.tensor(present)}
        pixels = self.pixel_values(real)
        full = pixels.new_zeros((len(images), *pixels.shape[1:]))
        full[torch.tensor(present)] = pixels
        return {"pixel_values": full, "image_mask": torch.tensor(present)}


# Last: AutoConfig / AutoProcessor know this class from here on (multimodal_cat.modeling.auto).
from multimodal_cat.modeling.auto import register_processor  # noqa: E402

register_processor()
