"""The ``"product-categorization"`` task of ``transformers.pipeline``.

After ``import multimodal_cat``, ``pipeline("product-categorization", model=checkpoint)`` loads
a trained checkpoint (model and processor through the Auto classes) and answers with the
checkpoint predictor's own decoding (:class:`~multimodal_cat.predictors.checkpoint.ModelPredictor`,
``model.decode``): the same categories, scores and tags as ``Categorizer.from_pretrained``.

Inputs, one or a list:

- a string: a title; a string naming an image file (``.jpg``, ``.png``, ... that exists) or an
  ``http(s)`` image URL, or a ``pathlib.Path``: an image;
- a dict with ``title`` / ``description`` / ``brand`` / ``image`` (path, URL or PIL image);
- a PIL image.

Each answer is a dict: ``label`` (the category id), ``path`` (its full path), ``score``,
``alternatives`` (``[{"label", "path", "score"}]``, best first), ``tags``
(``[{"attribute", "value", "score"}]``), ``inputs`` (``text+image``, ``text`` or ``image``)
and ``warnings``; a list in gives a list out.

Example:
    >>> import multimodal_cat  # doctest: +SKIP
    >>> from transformers import pipeline  # doctest: +SKIP
    >>> categorize = pipeline("product-categorization", model="ckpt")  # doctest: +SKIP
    >>> categorize("Nike Men Red Running Shoes", top_k=3)["path"]  # doctest: +SKIP
    'Footwear > Shoes > Sports Shoes'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from transformers import Pipeline

from multimodal_cat.errors import ConfigurationError, FormatError
from multimodal_cat.predictions import Prediction
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def _names_an_image(text: str) -> bool:
    """A string is an image reference when it is an http(s) URL or a path with an image suffix."""
    stripped = text.strip()
    if stripped.lower().startswith(("http://", "https://")):
        return True
    return "\n" not in stripped and stripped.lower().endswith(IMAGE_SUFFIXES)


def pipeline_product(item: Any) -> Product:
    """The :class:`Product` a pipeline input stands for (see the module docstring).

    Raises:
        FormatError: ``item`` is none of the accepted kinds, names an image file that does not
            exist or cannot be read, or holds neither text nor an image.

    Example:
        >>> pipeline_product("Red running shoes").title
        'Red running shoes'
        >>> pipeline_product(Image.new("RGB", (4, 4))).has_image
        True
    """
    from multimodal_cat.categorizer import to_products

    if isinstance(item, Product):
        return item
    if isinstance(item, Image.Image):
        return Product(image=item.convert("RGB"))
    if isinstance(item, Path) or (isinstance(item, str) and _names_an_image(item)):
        ref = str(item).strip()
        if not ref.lower().startswith(("http://", "https://")) and not Path(ref).is_file():
            raise FormatError(
                f"image file not found: {ref!r}; to categorize this text as a title, pass "
                f"{{'title': {ref!r}}}"
            )
        product = to_products([{"image": ref}])[0]
    elif isinstance(item, str):
        product = Product(title=item)
    elif isinstance(item, Mapping):
        product = to_products([item])[0]
    else:
        raise FormatError(
            "a product-categorization input must be a title (str), an image (PIL image, "
            f"pathlib.Path, image file name or URL) or a dict of fields; got {type(item).__name__}"
        )
    if not product.has_text and not product.has_image:
        problems = "; ".join(product.extra.get("warnings", [])) or "no title, description or brand"
        raise FormatError(f"the input has neither usable text nor a readable image ({problems})")
    return product


def prediction_dict(prediction: Prediction) -> dict[str, Any]:
    """A :class:`Prediction` in the pipeline's answer shape."""
    return {
        "label": prediction.category_id,
        "path": prediction.category_path,
        "score": prediction.confidence,
        "alternatives": [
            {"label": a.id, "path": a.path, "score": a.score} for a in prediction.alternatives
        ],
        "tags": [{"attribute": t.attribute, "value": t.value, "score": t.score} for t in prediction.tags],
        "inputs": prediction.inputs,
        "warnings": list(prediction.warnings),
    }


class ProductCategorizationPipeline(Pipeline):
    """``pipeline("product-categorization", model=...)``: products in, categories and tags out.

    Call options: ``top_k`` (alternatives listed, default 5) and ``min_confidence`` (back off to
    the deepest node on the best path whose probability reaches it).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ConfigurationError(
                "product-categorization needs the checkpoint's processor (processor_config.json "
                "beside the model, or processor=MultimodalCatProcessor.from_pretrained(...))"
            )
        self.predictor = ModelPredictor(self.model, self.processor)

    def _sanitize_parameters(
        self, top_k: int | None = None, min_confidence: float | None = None, **unused: Any
    ) -> tuple[dict, dict, dict]:
        if unused:
            raise ConfigurationError(
                f"product-categorization takes top_k and min_confidence; got {sorted(unused)}"
            )
        forward = {}
        if top_k is not None:
            forward["top_k"] = top_k
        if min_confidence is not None:
            forward["min_confidence"] = min_confidence
        return {}, forward, {}

    def preprocess(self, item: Any) -> dict[str, Any]:
        return {"product": pipeline_product(item)}

    def _forward(
        self, model_inputs: dict[str, Any], top_k: int = 5, min_confidence: float | None = None
    ) -> dict[str, Any]:
        product = model_inputs["product"]
        prediction = self.predictor.predict(
            [product], top_k=top_k, min_confidence=min_confidence
        )[0]
        prediction.warnings.extend(product.extra.get("warnings", []))
        return {"prediction": prediction}

    def postprocess(self, model_outputs: dict[str, Any]) -> dict[str, Any]:
        return prediction_dict(model_outputs["prediction"])


# Last: the task is known to transformers.pipeline from here on (multimodal_cat.modeling.auto).
from multimodal_cat.modeling.auto import register_pipeline  # noqa: E402

register_pipeline()
