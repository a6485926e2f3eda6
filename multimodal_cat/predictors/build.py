"""The predictor ``multimodal-cat categorize`` runs: a trained checkpoint, else zero-shot.

Example:
    >>> predictor = build_predictor(taxonomy="shopify")  # doctest: +SKIP
    >>> predictor.predict([Product(title="Women's leather ankle boots")])[0].category_path  # doctest: +SKIP
    'Apparel & Accessories > Shoes > Boots'
"""

from __future__ import annotations

from typing import Any

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.predictors.base import Predictor
from multimodal_cat.taxonomy import Taxonomy


def build_predictor(
    *,
    model: str | None = None,
    taxonomy: str | Taxonomy | None = None,
    bf16: bool = False,
    num_threads: int | None = None,
    image_encoder: Any = None,
    text_encoder: Any = "minilm",
    adapt: bool = False,
) -> Predictor:
    """A checkpoint predictor when ``model`` is given, else a zero-shot one over ``taxonomy``.

    Args:
        model: A checkpoint folder or hub id (see
            :meth:`~multimodal_cat.predictors.checkpoint.ModelPredictor.from_pretrained`).
        taxonomy: The tree to search zero-shot: a shipped name, a file, or a loaded tree.
        bf16: Run the checkpoint's towers under bf16 autocast.
        num_threads: The checkpoint's torch threads while it predicts.
        image_encoder: Zero-shot only: an aligned image-text model (e.g. a CLIP hub id).
        text_encoder: Zero-shot only: the text encoder.
        adapt: Zero-shot only: smooth each batch's probabilities over its products' nearest
            neighbours (:mod:`~multimodal_cat.zero_shot.adapt`).

    Raises:
        ValueError: Neither ``model`` nor ``taxonomy`` is given, or ``image_encoder``,
            another ``text_encoder`` or ``adapt`` is given with ``model``.
        FileNotFoundError: ``model`` (or ``image_encoder``) names a folder that cannot be found.
        CheckpointError: ``model`` exists but cannot be loaded (damaged, or another model's).
    """
    if model:
        custom_text = text_encoder if text_encoder != "minilm" else None
        _check_zero_shot_only({"image_encoder": image_encoder, "text_encoder": custom_text, "adapt": adapt})
        from multimodal_cat.predictors.checkpoint import ModelPredictor

        return ModelPredictor.from_pretrained(model, bf16=bf16, num_threads=num_threads)
    if taxonomy is None or taxonomy == "":
        raise InvalidArgumentError("give a trained model (--model) or a taxonomy to search (--taxonomy)")
    from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer

    tree = taxonomy if isinstance(taxonomy, Taxonomy) else Taxonomy.load(taxonomy)
    if isinstance(image_encoder, str):  # a folder that can only be missing fails now, not mid-job
        from multimodal_cat.predictors.checkpoint import check_checkpoint_name

        check_checkpoint_name(image_encoder)
    return ZeroShotCategorizer(
        tree, text_encoder=text_encoder, image_encoder=image_encoder, adapt=adapt
    )


_WHY_ZERO_SHOT_ONLY = {
    "image_encoder": "a trained model has its own image tower",
    "text_encoder": "a trained model has its own text tower",
    "adapt": "a trained model learned from labels",
}


def _check_zero_shot_only(options: dict[str, Any]) -> None:
    """Refuse a zero-shot option given with a trained model, naming its command-line flag."""
    for name, value in options.items():
        if value:
            flag = "--" + name.replace("_", "-")
            raise InvalidArgumentError(
                f"{name} is for zero-shot categorization; {_WHY_ZERO_SHOT_ONLY[name]} "
                f"(give --model or {flag}, not both)"
            )
