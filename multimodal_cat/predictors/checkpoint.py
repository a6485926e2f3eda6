"""Predict with a trained :class:`~multimodal_cat.modeling.MultimodalCatModel` checkpoint.

The towers' pooled outputs (``image_embeds`` / ``text_embeds``) are what the fusion head reads.
:class:`TowerEmbedder` computes them for a batch of products, caching each by content hash (the
rendered text, the decoded image's pixels) and by tower (a digest of its weights, its pooling
and the text length limit), so a second pass over the same feed only runs the small fusion
head; the trainer's frozen-encoder fast path uses it too, to embed a training set once.
:class:`ModelPredictor` runs the encoders in inference mode, optionally under bf16 autocast,
and optionally with their own intra-op thread count (``num_threads``): on a machine shared with
other jobs, fewer threads than cores avoid the per-operator barrier stalls of descheduled
threads. It reads no files and fetches nothing: products come with their images decoded.

Example:
    >>> predictor = ModelPredictor.from_pretrained("path/to/checkpoint")  # doctest: +SKIP

    Here with a tiny random model (ViT + BERT towers, hidden size 32, a 7-node tree):

    >>> import tempfile
    >>> from multimodal_cat.modeling.testing import tiny_model, tiny_processor
    >>> model, processor = tiny_model(), tiny_processor(tempfile.mkdtemp())
    >>> predictor = ModelPredictor(model, processor)
    >>> best = predictor.predict([Product(title="red leather boots")])[0]
    >>> predictor.taxonomy[best.category_id].full_path == best.category_path
    True
    >>> embedder = TowerEmbedder(model, processor, cache=EmbeddingCache(tempfile.mkdtemp()))
    >>> embedder.embed([Product(title="red cotton shirt")])["text_embeds"].shape
    torch.Size([1, 32])
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from multimodal_cat.encoders import EmbeddingCache, content_hash, encode_cached
from multimodal_cat.encoders._arrays import l2_normalize
from multimodal_cat.encoders._base import model_device, run_batches, use_bf16
from multimodal_cat.errors import ConfigurationError, InvalidArgumentError, MultimodalCatError
from multimodal_cat.framing import framing_tag
from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.modeling.orientation import TURNS, OrientationProbe
from multimodal_cat.predictions import CategoryScore, Prediction, failed_if_unread, inputs_used
from multimodal_cat.predictors.locate import check_checkpoint_name
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy


def tower_fingerprint(tower: torch.nn.Module) -> str:
    """A short digest of a tower's weights: the cache key part that names the encoder."""
    digest = hashlib.sha256()
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def image_hash(image: Image.Image) -> str:
    """Content hash of a decoded image (its mode, size and pixels)."""
    return content_hash(f"{image.mode}{image.size}".encode() + image.tobytes())


class _Tower:
    """One tower of the model seen as an encoder (``key``, ``dim``, ``encode``) for the cache."""

    def __init__(self, model: MultimodalCatModel, processor: MultimodalCatProcessor, kind: str):
        self.model, self.processor, self.kind = model, processor, kind
        tower = model.vision_model if kind == "image" else model.text_model
        pooling = model.config.vision_pooling if kind == "image" else model.config.text_pooling
        extra = (
            f"|max_length={processor.max_length}"
            if kind == "text"
            else f"|fit={framing_tag(processor.image_fit)}"
        )
        self.key = f"{kind}:tower-{tower_fingerprint(tower)}|pool={pooling}{extra}"

    def encode(
        self, items: Sequence, batch_size: int = 32, normalize: bool = False, bf16: bool = False
    ) -> np.ndarray:
        vectors = run_batches(
            self._encode_chunk, items, self.model, batch_size=batch_size, bf16=bf16
        )
        return l2_normalize(vectors) if normalize else vectors

    def _encode_chunk(self, chunk: list[Any], device: torch.device) -> torch.Tensor:
        if self.kind == "text":
            tokens = self.processor.encode_text(chunk)
            return self.model.get_text_features(**{k: v.to(device) for k, v in tokens.items()})
        pixels = self.processor.pixel_values(chunk)
        return self.model.get_image_features(pixels.to(device))


class TowerEmbedder:
    """Compute (or read from the cache) the pooled tower outputs of products.

    Args:
        model: The model whose towers embed (its towers are what the cache key names).
        processor: Its processor (text template, tokenizer, image processor).
        cache: Embedding cache; ``None`` computes every time.
        bf16: Run the towers under bf16 autocast (CPU or GPU).
        batch_size: Products per tower call.
    """

    def __init__(
        self,
        model: MultimodalCatModel,
        processor: MultimodalCatProcessor,
        *,
        cache: EmbeddingCache | None = None,
        bf16: bool = False,
        batch_size: int = 32,
    ) -> None:
        self.processor, self.cache, self.bf16, self.batch_size = processor, cache, bf16, batch_size
        self.towers = {
            kind: _Tower(model, processor, kind)
            for kind, tower in (("image", model.vision_model), ("text", model.text_model))
            if tower is not None
        }

    def _embed(self, kind: str, items: list[Any], hashes: list[str]) -> torch.Tensor:
        tower = self.towers[kind]
        if self.cache is None:
            vectors = tower.encode(items, self.batch_size, bf16=self.bf16)
        else:
            vectors = encode_cached(
                tower, items, hashes, self.cache, batch_size=self.batch_size, bf16=self.bf16
            )
        return torch.from_numpy(vectors)

    def _text(self, products: Sequence[Product], n: int) -> dict[str, torch.Tensor]:
        texts = self.processor.texts(products)
        mask = [bool(t.strip()) for t in texts]
        out = {"text_mask": torch.tensor(mask)}
        rows = [i for i in range(n) if mask[i]]
        if rows:
            found = self._embed(
                "text", [texts[i] for i in rows], [content_hash(texts[i]) for i in rows]
            )
            out["text_embeds"] = torch.zeros(n, found.shape[1])
            out["text_embeds"][rows] = found
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The image tower's pooled outputs of decoded ``images`` (cached by pixels)."""
        rgb = [image.convert("RGB") for image in images]
        return self._embed("image", rgb, [image_hash(im) for im in rgb])

    def _image(self, products: Sequence[Product], n: int) -> dict[str, torch.Tensor]:
        out = {"image_mask": torch.tensor([p.image is not None for p in products])}
        rows = [i for i, p in enumerate(products) if p.image is not None]
        if rows:
            found = self.embed_images([products[i].image for i in rows])  # type: ignore[misc]
            out["image_embeds"] = torch.zeros(n, found.shape[1])
            out["image_embeds"][rows] = found
        return out

    def embed(
        self, products: Sequence[Product], *, allow_empty: bool = False
    ) -> dict[str, torch.Tensor]:
        """``text_embeds`` / ``image_embeds`` (zeros where missing) and their masks.

        A modality no product has gets only its (all-false) mask.

        Raises:
            ValueError: When every product lacks both text and image, unless ``allow_empty``.
        """
        n, inputs = len(products), {}
        if "text" in self.towers:
            inputs.update(self._text(products, n))
        if "image" in self.towers:
            inputs.update(self._image(products, n))
        if not allow_empty and "text_embeds" not in inputs and "image_embeds" not in inputs:
            raise InvalidArgumentError("every product in the batch lacks both text and image")
        return inputs


def label_taxonomy(space: Any) -> Taxonomy:
    """The tree a model predicts into (its :class:`~multimodal_cat.modeling.labels.LabelSpace`)
    as a :class:`~multimodal_cat.taxonomy.Taxonomy`: same ids, names and parents."""
    parents = [space.ids[p] if p >= 0 else None for p in space.parents]
    return Taxonomy.from_records(
        zip(space.ids, parents, space.names, strict=True), name=space.taxonomy_name or "custom"
    )


def check_calibration(config: Any, name: str = "the checkpoint") -> None:
    """Refuse a config whose confidences could not be trusted: a temperature that is not a
    positive finite number (``0`` divides the logits by zero), or a stored auto-accept
    threshold that is not a finite number (thresholds of a diverged training run).

    Raises:
        ConfigurationError: Says which value, what was expected and what was found.
    """
    for key in ("category_temperature", "tag_temperature"):
        value = getattr(config, key, 1.0)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigurationError(
                f"{name}: expected {key} to be a positive number in its config.json; found "
                f"{value!r}: the checkpoint cannot give usable confidences"
            )
    stored = dict(getattr(config, "confidence_thresholds", None) or {})
    for kind, values in (getattr(config, "confidence_thresholds_by_input", None) or {}).items():
        stored.update({f"{kind}:{p}": v for p, v in values.items()})
    for kind, value in (getattr(config, "category_temperatures_by_input", None) or {}).items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigurationError(
                f"{name}: expected category_temperatures_by_input[{kind!r}] to be a positive "
                f"number in its config.json; found {value!r}"
            )
    for precision, value in stored.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ConfigurationError(
                f"{name}: expected confidence_thresholds[{precision!r}] to be a number; found "
                f"{value!r} (thresholds of a diverged training run?)"
            )


def checkpoint_taxonomy(name_or_path: str) -> Taxonomy:
    """The tree a checkpoint predicts into, read from its ``config.json`` (no weights loaded).

    Review commands take it as their tree (``--model CKPT`` instead of ``--taxonomy``), so the
    Label Studio project, its tasks and the corrections read back use the model's label space.

    Raises:
        FileNotFoundError: The checkpoint cannot be found (see :func:`check_checkpoint_name`).

    Example:
        >>> import tempfile
        >>> from multimodal_cat.modeling.testing import tiny_config
        >>> folder = tempfile.mkdtemp()
        >>> tiny_config().save_pretrained(folder)
        >>> checkpoint_taxonomy(folder).find("Apparel > Shoes > Boots").name
        'Boots'
    """
    from multimodal_cat.modeling import MultimodalCatConfig

    check_checkpoint_name(name_or_path)
    return label_taxonomy(MultimodalCatConfig.from_pretrained(name_or_path).label_space)


class CheckpointError(MultimodalCatError, ValueError):
    """A checkpoint that exists but cannot be loaded: damaged, truncated, or not this model's."""


def load_checkpoint(name_or_path: str) -> tuple[MultimodalCatModel, MultimodalCatProcessor]:
    """The model and processor of a checkpoint, or one plain sentence saying why not.

    Raises:
        CheckpointError: ``config.json`` is not a model config (a JSON array...), the weights
            file is truncated or a pickle that cannot be read, the weights do not fit the config
            (a changed label count), or the weights file lacks some of the model's weights.
        ConfigurationError: The processor's settings are refused (a text template with format
            specs, a ``max_length`` under 1).
    """
    try:
        model, info = MultimodalCatModel.from_pretrained(name_or_path, output_loading_info=True)
        processor = MultimodalCatProcessor.from_pretrained(name_or_path)
    except (MultimodalCatError, FileNotFoundError):
        raise
    except Exception as error:  # whatever the loaders raise on damaged files
        raise CheckpointError(f"cannot load the checkpoint {name_or_path!r}: {_load_failure(error)}") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise CheckpointError(
            f"cannot load the checkpoint {name_or_path!r}: its weights file lacks {len(missing)} of "
            f"the model's weights (e.g. {missing[0]!r}); it is damaged or was saved from another model"
        )
    return model, processor


def _load_failure(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if "mismatched" in str(error) or "size mismatch" in str(error):
        return "its weights do not fit its config.json (a changed label count or layer size)"
    if isinstance(error, TypeError) and "mapping" in text:
        return "config.json is not a model configuration (expected a JSON object)"
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


class ModelPredictor:
    """Run a trained checkpoint over products, batch by batch.

    Args:
        model: The trained model (put in eval mode here).
        processor: Its processor (text template, tokenizer, image processor).
        bf16: Run the towers under bf16 autocast (CPU or GPU).
        cache: Embedding cache for tower outputs; ``None`` disables caching.
        batch_size: Products per tower call.
        num_threads: Torch intra-op threads while predicting (restored afterwards); ``None``
            keeps the process setting. On a 2-core machine already busy with other jobs, 1
            thread ran DINOv2-S 1.3x (fp32) to 2x (bf16) faster than 2.
    """

    def __init__(
        self,
        model: MultimodalCatModel,
        processor: MultimodalCatProcessor,
        *,
        bf16: bool = False,
        cache: EmbeddingCache | None = None,
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        if num_threads is not None and num_threads < 1:
            raise InvalidArgumentError(f"num_threads must be None or at least 1, got {num_threads}")
        self.num_threads = num_threads
        self.model = model.eval()
        self.processor = processor
        bf16 = use_bf16(bf16, model_device(model))
        self.bf16, self.cache, self.batch_size = bf16, cache, batch_size
        space = model.label_space
        self.taxonomy = label_taxonomy(space)
        self.classes_ = [space.ids[i] for i in space.leaves]
        self.embedder = TowerEmbedder(
            model, processor, cache=cache, bf16=bf16, batch_size=batch_size
        )

    @property
    def reads_images(self) -> bool:
        """Whether the checkpoint has an image tower (else no photo is loaded for it)."""
        return "image" in self.embedder.towers

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        bf16: bool = False,
        cache: bool | EmbeddingCache = True,
        **kwargs: Any,
    ) -> ModelPredictor:
        """Load a checkpoint folder or hub id saved with ``save_pretrained``.

        Raises:
            FileNotFoundError: ``name_or_path`` is a local path that does not exist, or a hub
                id that is not in the local cache while the hub is offline (``HF_HUB_OFFLINE``).
            ConfigurationError: Its temperatures or stored thresholds cannot be used.
            CheckpointError: The checkpoint exists but cannot be loaded (see :func:`load_checkpoint`).
        """
        check_checkpoint_name(name_or_path)
        model, processor = load_checkpoint(name_or_path)
        check_calibration(model.config, name_or_path)
        store = EmbeddingCache() if cache is True else (cache or None)
        return cls(model, processor, bf16=bf16, cache=store, **kwargs)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        if self.num_threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _forward(self, products: list[Product]) -> tuple[Any, dict[str, torch.Tensor], dict[int, tuple[str, float]]]:
        """The model's output, its inputs (tower outputs and the text / image masks) and, for
        the rows whose photo the orientation probe found turned, the warning and the factor
        their confidence takes (:meth:`_orientation`)."""
        device = model_device(self.model)
        with torch.inference_mode(), self._threads():
            embedded = self.embedder.embed(products)
            turned = self._orientation(products, embedded)
            inputs = {k: v.to(device) for k, v in embedded.items()}
            return self.model(**inputs), inputs, turned

    def _orientation(
        self, products: list[Product], embedded: dict[str, torch.Tensor]
    ) -> dict[int, tuple[str, float]]:
        """Photos the checkpoint's orientation probe doubts are upright are embedded turned
        three more ways; where the four views agree that a photo came turned, it is read turned
        back (probe mode ``"turn"``) or, in mode ``"flag"``, a product with text is answered
        from its text and a photo alone keeps its answer at a confidence scaled by the vote's
        doubt (:mod:`~multimodal_cat.modeling.orientation`). Returns row -> (warning, factor)."""
        probe = OrientationProbe.from_dict(self.model.config.orientation_probe)
        if probe is None or "image_embeds" not in embedded:
            return {}
        doubtful = embedded["image_mask"] & probe.doubtful(embedded["image_embeds"])
        rows = doubtful.nonzero().flatten().tolist()
        if not rows:
            return {}
        photos = [products[i].image for i in rows]
        views = [embedded["image_embeds"][rows]] + [
            self.embedder.embed_images([p.rotate(degrees, expand=True) for p in photos])  # type: ignore[union-attr]
            for degrees in TURNS[1:]
        ]
        turns, sure = probe.turn_of(torch.stack(views))
        found = {}
        for j, row in enumerate(rows):
            t = int(turns[j])
            if not t:
                continue
            seen = f"the photo looked turned by {TURNS[t]} degrees"
            if probe.mode == "turn":  # turned back by t = turned further by 4 - t quarters
                embedded["image_embeds"][row] = views[-t % len(TURNS)][j]
                found[row] = (f"{seen}; it was read turned back upright", 1.0)
            elif "text_mask" in embedded and bool(embedded["text_mask"][row]):
                embedded["image_mask"][row] = False
                found[row] = (f"{seen}; answered from the text alone", 1.0)
            else:
                found[row] = (f"{seen}; its answer is held at low confidence", 1.0 - float(sure[j]))
        return found

    def _by_input(self, inputs: dict[str, torch.Tensor]) -> dict[int, dict[str, CategoryScore]]:
        """For rows with text and image: the best leaf from each input alone, with its probability."""
        if "text_embeds" not in inputs or "image_embeds" not in inputs:
            return {}
        both = (inputs["text_mask"] & inputs["image_mask"]).cpu()
        if not bool(both.any()):
            return {}
        out: dict[int, dict[str, CategoryScore]] = {int(i): {} for i in both.nonzero().flatten()}
        space = self.model.label_space
        for kind, hidden in (("text", "image_mask"), ("image", "text_mask")):
            alone = {**inputs, hidden: torch.zeros_like(inputs[hidden])}
            with torch.inference_mode(), self._threads():
                probs = self.model.calibrated_leaf_probs(self.model(**alone))
            best, column = probs.max(-1)
            for row in out:
                node = space.leaves[int(column[row])]
                path = self.taxonomy[space.ids[node]].full_path
                out[row][kind] = CategoryScore(space.ids[node], path, round(float(best[row]), 4))
        return out

    def predict(
        self, products: list[Product], *, top_k: int = 5, min_confidence: float | None = None
    ) -> list[Prediction]:
        """One prediction per product; ``min_confidence`` backs off to a surer, coarser node.

        Each prediction's ``inputs`` says whether it read the text, the image or both; for a
        product with both, ``by_input`` holds what each alone would answer.
        """
        outputs, inputs, turned = self._forward(products)
        predictions = self.model.decode(outputs, top_k=top_k, min_confidence=min_confidence)
        absent = torch.zeros(len(products), dtype=torch.bool)
        used = inputs_used(
            inputs.get("text_mask", absent).tolist(), inputs.get("image_mask", absent).tolist()
        )
        by_input = self._by_input(inputs)
        for row, (prediction, what) in enumerate(zip(predictions, used, strict=True)):
            prediction.inputs = what
            prediction.by_input = by_input.get(row, {})
            if row in turned:
                warning, factor = turned[row]
                prediction.warnings.append(warning)
                if factor != 1.0:
                    prediction.confidence *= factor
                    prediction.alternatives = [replace(a, score=a.score * factor) for a in prediction.alternatives]
        towers = sorted(self.embedder.towers, reverse=True)  # "text", then "image"
        reads = " and ".join({"text": "text", "image": "photos"}[t] for t in towers)
        unread = f"this checkpoint reads {reads} only, and the product has none it can use"
        return failed_if_unread(predictions, unread)

    def thresholds_by_input(self, target_precision: str) -> dict[str, float]:
        """The auto-accept threshold stored for ``target_precision`` (``"0.98"``) per kind of
        input a product carries (``"text+image"``, ``"text"``, ``"image"``), each measured on
        held-out rows of that kind; kinds without their own keep none here (the router uses
        the shared threshold for them). Thresholds that are not numbers are left out.

        Example:
            >>> from multimodal_cat.modeling.testing import tiny_model, tiny_processor
            >>> import tempfile
            >>> model = tiny_model()
            >>> model.config.confidence_thresholds_by_input = {"image": {"0.98": 0.99}}
            >>> ModelPredictor(model, tiny_processor(tempfile.mkdtemp())).thresholds_by_input("0.98")
            {'image': 0.99}
        """
        out = {}
        for kind, stored in (self.model.config.confidence_thresholds_by_input or {}).items():
            value = stored.get(str(target_precision))
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[kind] = float(value)
        return out

    def predict_proba(self, products: list[Product]) -> np.ndarray:
        """Leaf probabilities (n, len(classes_))."""
        return self.model.calibrated_leaf_probs(self._forward(products)[0]).numpy()
