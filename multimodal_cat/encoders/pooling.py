"""Pool a transformer's token states into one vector per input.

The model's towers call this same function, so an embedding computed by
:class:`~multimodal_cat.encoders.TextEncoder` / :class:`~multimodal_cat.encoders.ImageEncoder`
equals what the model computes from tokens or pixels with the same ``mode``.
"""

from __future__ import annotations

from typing import Literal

import torch

from multimodal_cat.errors import InvalidArgumentError

__all__ = ["POOLING_MODES", "PoolingMode", "pool", "pooled_dim"]

PoolingMode = Literal["cls", "mean", "cls_mean"]
POOLING_MODES: tuple[str, ...] = ("cls", "mean", "cls_mean")


def _masked_mean(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the token axis of ``states`` (B, T, H), counting only tokens where mask == 1."""
    if mask is None:
        return states.mean(dim=1)
    weights = mask.to(states.dtype).unsqueeze(-1)
    total = (states * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1e-9)
    return total / count


def pool(
    last_hidden_state: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    mode: PoolingMode = "mean",
) -> torch.Tensor:
    """Pool token states ``(batch, tokens, hidden)`` into ``(batch, dim)``.

    Modes:
        * ``"cls"``: the first token's state (``dim = hidden``).
        * ``"mean"``: mean of every token the mask keeps, all tokens when ``attention_mask``
          is None (``dim = hidden``); sentence-transformers' mean pooling for text.
        * ``"cls_mean"``: the first token concatenated with the masked mean of the other
          tokens, excluding the first (``dim = 2 * hidden``); DINOv2's linear-probe feature.

    The arithmetic runs in float32 and the result is cast back to the input dtype.

    Args:
        last_hidden_state: float tensor (B, T, H).
        attention_mask: optional (B, T) tensor of 0/1 (padding = 0).
        mode: one of ``"cls"``, ``"mean"``, ``"cls_mean"``.

    Returns:
        Tensor (B, H) or (B, 2H) for ``cls_mean``.

    Raises:
        ValueError: unknown ``mode`` or shapes that do not fit.

    Example:
        >>> h = torch.ones(2, 5, 8)
        >>> pool(h, torch.tensor([[1, 1, 1, 0, 0], [1] * 5]), "cls_mean").shape
        torch.Size([2, 16])
    """
    if mode not in POOLING_MODES:
        raise InvalidArgumentError(f"Expected pooling mode in {POOLING_MODES}; got {mode!r}.")
    if last_hidden_state.dim() != 3:
        raise InvalidArgumentError(
            "Expected last_hidden_state of shape (batch, tokens, hidden); "
            f"got shape {tuple(last_hidden_state.shape)}."
        )
    if attention_mask is not None and attention_mask.shape != last_hidden_state.shape[:2]:
        raise InvalidArgumentError(
            f"Expected attention_mask of shape {tuple(last_hidden_state.shape[:2])}; "
            f"got {tuple(attention_mask.shape)}."
        )
    dtype = last_hidden_state.dtype
    states = last_hidden_state.float()
    if mode == "cls":
        pooled = states[:, 0]
    elif mode == "mean":
        pooled = _masked_mean(states, attention_mask)
    else:
        if states.shape[1] < 2:
            raise InvalidArgumentError("cls_mean pooling needs at least 2 tokens (CLS + one more); got 1.")
        rest_mask = None if attention_mask is None else attention_mask[:, 1:]
        pooled = torch.cat([states[:, 0], _masked_mean(states[:, 1:], rest_mask)], dim=-1)
    return pooled.to(dtype)


def pooled_dim(hidden_size: int, mode: PoolingMode) -> int:
    """Return the size of :func:`pool`'s output for a model with ``hidden_size``.

    Example:
        >>> pooled_dim(384, "cls_mean")
        768
    """
    if mode not in POOLING_MODES:
        raise InvalidArgumentError(f"Expected pooling mode in {POOLING_MODES}; got {mode!r}.")
    return 2 * hidden_size if mode == "cls_mean" else hidden_size
