from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multimodal_cat.encoders import ImageEncoder, TextEncoder, pool


@pytest.fixture
def bert_dir(tiny_text_dir: Path) -> Path:
    return tiny_text_dir


@pytest.fixture(scope="module")
def dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = tmp_path_factory.mktemp("tiny-dinov2")
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        patch_size=7,
        image_size=28,
        mlp_ratio=2,
    )
    torch.manual_seed(0)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}
    ).save_pretrained(folder)
    return folder


@pytest.fixture
def vit_dir(tiny_vit_dir: Path) -> Path:
    return tiny_vit_dir


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)) for _ in range(n)]


def test_text_encode_shapes_order_and_normalization(bert_dir: Path) -> None:
    encoder = TextEncoder.from_name(str(bert_dir), pooling="mean", max_length=16)
    assert encoder.dim == 32
    assert encoder.tokenizer.tokenize("red shoes") == ["red", "shoes"]
    texts = ["red leather shoes", "pan", "blue cotton shirt black sneakers", "kitchen"]
    batched = encoder.encode(texts, batch_size=3)
    assert batched.shape == (4, 32) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    alone = np.concatenate([encoder.encode([text]) for text in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)  # padding and sorting are invisible
    assert encoder.encode([]).shape == (0, 32)


def test_text_embeddings_equal_pool_of_model_output(bert_dir: Path) -> None:
    encoder = TextEncoder.from_name(str(bert_dir), pooling="cls_mean", max_length=16)
    texts = ["red leather shoes", "pan"]
    tokens = encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = encoder.model(**tokens).last_hidden_state
    expected = pool(states, tokens["attention_mask"], "cls_mean").numpy()
    np.testing.assert_allclose(encoder.encode(texts, normalize=False), expected, atol=1e-5)
    assert encoder.dim == 64


def test_text_key_and_bad_input(bert_dir: Path) -> None:
    encoder = TextEncoder.from_name(str(bert_dir), pooling="cls", max_length=8)
    assert encoder.key == f"text:{bert_dir}|pool=cls|max_length=8"
    with pytest.raises(TypeError, match="position 1"):
        encoder.encode(["ok", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder.from_name(str(bert_dir), pooling="max")  # type: ignore[arg-type]


def test_text_bf16_is_close(bert_dir: Path) -> None:
    encoder = TextEncoder.from_name(str(bert_dir))
    texts = ["red leather shoes", "kitchen pan"]
    cos = (encoder.encode(texts) * encoder.encode(texts, bf16=True)).sum(1)
    assert cos.min() > 0.99


def test_text_workers_give_the_same_vectors_and_restore_threads(bert_dir: Path) -> None:
    encoder = TextEncoder.from_name(str(bert_dir), max_length=16)
    texts = ["red leather shoes", "pan", "blue cotton shirt black sneakers", "kitchen", "boot"] * 3
    threads = torch.get_num_threads()
    one = encoder.encode(texts, batch_size=2)
    two = encoder.encode(texts, batch_size=2, workers=2)
    np.testing.assert_allclose(one, two, atol=1e-5)
    assert torch.get_num_threads() == threads
    assert encoder.encode([], workers=2).shape == (0, 32)
    with pytest.raises(ValueError, match="workers"):
        encoder.encode(texts, workers=0)


def test_text_worker_errors_reach_the_caller(bert_dir: Path, monkeypatch) -> None:
    encoder = TextEncoder.from_name(str(bert_dir), max_length=16)
    threads = torch.get_num_threads()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(encoder.model, "forward", broken)
    with pytest.raises(RuntimeError, match="boom"):
        encoder.encode(["red shoes", "pan", "kitchen"], batch_size=1, workers=2)
    assert torch.get_num_threads() == threads


def test_image_encode_inputs_shapes_and_pool(dinov2_dir: Path, tmp_path: Path) -> None:
    encoder = ImageEncoder.from_name(str(dinov2_dir), pooling="cls_mean")
    images = _images(3)
    out = encoder.encode(images, batch_size=2)
    assert out.shape == (3, 64) and encoder.dim == 64 and out.dtype == np.float32
    pixels = encoder.pixel_values(images)
    assert pixels.shape == (3, 3, 28, 28)
    with torch.no_grad():
        expected = pool(encoder.model(pixel_values=pixels).last_hidden_state, None, "cls_mean")
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)
    path = tmp_path / "a.png"
    images[0].save(path)
    as_bytes = io.BytesIO()
    images[0].save(as_bytes, format="PNG")
    others = encoder.encode([path, str(path), as_bytes.getvalue(), images[0].convert("L")])
    np.testing.assert_allclose(others[:3], np.repeat(out[:1], 3, axis=0), atol=1e-5)
    assert others.shape == (4, 64)


def test_image_bf16_normalize_and_empty(dinov2_dir: Path) -> None:
    encoder = ImageEncoder.from_name(str(dinov2_dir), pooling="cls")
    images = _images(2)
    fp32 = encoder.encode(images, normalize=True)
    bf16 = encoder.encode(images, bf16=True, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(fp32, axis=1), 1.0, rtol=1e-5)
    assert (fp32 * bf16).sum(1).min() > 0.99
    assert encoder.encode([]).shape == (0, 32)
    assert encoder.key == f"image:{dinov2_dir}|pool=cls|fit=pad-trim"
    with pytest.raises(TypeError, match="PIL image, a path or bytes"):
        encoder.encode([42])  # type: ignore[list-item]


def test_vit_checkpoint_works(vit_dir: Path) -> None:
    encoder = ImageEncoder.from_name(str(vit_dir), pooling="mean")
    assert encoder.encode(_images(2)).shape == (2, 32)
