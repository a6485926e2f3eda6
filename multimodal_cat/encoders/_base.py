"""Loading, keys and batching shared by the text and image encoders."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimodal_cat.encoders._arrays import batched
from multimodal_cat.encoders.pooling import POOLING_MODES
from multimodal_cat.encoders.registry import (
    UnknownEncoderError,
    canonical_name,
    known_encoders,
    resolve_encoder,
    unknown_encoder_message,
)
from multimodal_cat.errors import InvalidArgumentError


def key_name(name: str) -> str:
    """Stable name for cache keys: the canonical short name, an absolute path, or a hub id."""
    canonical = canonical_name(name)
    if canonical in known_encoders():
        return canonical
    return os.path.abspath(name) if Path(name).is_dir() else name


def check_pooling(pooling: str) -> None:
    """Raise a ValueError naming the accepted modes if ``pooling`` is not one of them."""
    if pooling not in POOLING_MODES:
        raise InvalidArgumentError(f"Expected pooling in {POOLING_MODES}; got {pooling!r}.")


def load_tower(
    name: str,
    modality: str,
    pooling: str,
    *,
    local_files_only: bool | None,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[Any, Any]:
    """An encoder's backbone (``AutoModel``) and its tokenizer (``modality="text"``) or image
    processor (``"image"``), after checking ``pooling``; see :func:`load_pretrained`."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    check_pooling(pooling)
    preprocessor = AutoTokenizer if modality == "text" else AutoImageProcessor
    model, processor = load_pretrained(
        name,
        (AutoModel.from_pretrained, preprocessor.from_pretrained),
        local_files_only=local_files_only,
        cache_dir=cache_dir,
    )
    return model, processor


def load_pretrained(
    name: str,
    loaders: Sequence[Callable[..., Any]],
    *,
    local_files_only: bool | None,
    cache_dir: str | os.PathLike[str] | None,
) -> list[Any]:
    """Resolve ``name`` and call each ``loader(source, local_files_only=...)``.

    Registered short names always load with ``local_files_only=True`` (no network).
    Other names use ``local_files_only`` as given (``None``: transformers' default, which
    honours ``HF_HUB_OFFLINE``).

    Raises:
        UnknownEncoderError: the name is not a short name, a local folder, or loadable.
    """
    source = resolve_encoder(name, cache_dir=cache_dir)
    is_short = canonical_name(name) in known_encoders()
    kwargs: dict[str, Any] = {}
    if is_short:
        kwargs["local_files_only"] = True
    elif local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    try:
        return [loader(source, **kwargs) for loader in loaders]
    except (OSError, ValueError) as error:
        if is_short or Path(source).is_dir():
            raise
        raise UnknownEncoderError(unknown_encoder_message(name, error)) from error


def backbone_of(model: torch.nn.Module, attribute: str) -> torch.nn.Module:
    """Return ``model.<attribute>`` for dual-encoder models (e.g. CLIP), else ``model``."""
    inner = getattr(model, attribute, None)
    return inner if isinstance(inner, torch.nn.Module) else model


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when ``bf16`` is true, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bf16 matmuls natively (a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 / AMX), i.e. where bf16 autocast is a speed-up rather than an emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, may move
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def use_bf16(requested: bool, device: torch.device | str = "cpu", *, what: str = "--bf16") -> bool:
    """The one bf16 check of every command: ``requested`` only where ``device`` runs bf16
    natively; otherwise a warning in plain words, and fp32.

    On a CPU without AVX512-BF16 / AMX, bf16 is emulated: a whole training embedding pass was
    measured about 5x slower under bf16 autocast on such a machine (AVX2 only).

    Example:
        >>> use_bf16(False)
        False
    """
    if not requested:
        return False
    if native_bf16(device):
        return True
    warnings.warn(
        f"{what} was asked for, but this {torch.device(device).type.upper()} has no native bf16 "
        "(no AVX512-BF16 / AMX, or a GPU without bf16): bf16 would be emulated and several times "
        "slower, so fp32 is used instead",
        stacklevel=2,
    )
    return False


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for parameter-less modules)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def run_batches(
    embed: Callable[[list[Any], torch.device], torch.Tensor],
    items: Sequence[Any],
    model: torch.nn.Module,
    *,
    batch_size: int,
    bf16: bool = False,
) -> np.ndarray:
    """``embed(chunk, device)`` over ``items``, ``batch_size`` at a time, as float32 (n, dim).

    Runs in inference mode on ``model``'s device, under bf16 autocast when ``bf16`` is true;
    rows keep the input order. No items give an empty (0, 0) array.

    Example:
        >>> layer = torch.nn.Linear(3, 2)
        >>> run_batches(lambda rows, device: layer(torch.tensor(rows, device=device)),
        ...             [[1.0, 0.0, 0.0]] * 5, layer, batch_size=2).shape
        (5, 2)
    """
    device = model_device(model)
    out = []
    with torch.inference_mode(), autocast(device, bf16):
        for chunk in batched(items, batch_size):
            out.append(embed(list(chunk), device).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
