from __future__ import annotations

import pytest
import torch

from multimodal_cat.encoders import POOLING_MODES, pool
from multimodal_cat.encoders.pooling import pooled_dim


@pytest.fixture
def states() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 5, 8)


def test_cls_takes_first_token(states: torch.Tensor) -> None:
    assert torch.equal(pool(states, None, "cls"), states[:, 0])


def test_mean_ignores_padding(states: torch.Tensor) -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    padded = states.clone()
    padded[0, 3:] = 1e6  # padding must not leak into the mean
    out = pool(padded, mask, "mean")
    torch.testing.assert_close(out[0], states[0, :3].mean(0))
    torch.testing.assert_close(out[1], states[1].mean(0))


def test_mean_without_mask_uses_all_tokens(states: torch.Tensor) -> None:
    torch.testing.assert_close(pool(states, None, "mean"), states.mean(1))


def test_cls_mean_excludes_cls_from_mean(states: torch.Tensor) -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = pool(states, mask, "cls_mean")
    assert out.shape == (2, 16)
    torch.testing.assert_close(out[:, :8], states[:, 0])
    torch.testing.assert_close(out[0, 8:], states[0, 1:3].mean(0))
    torch.testing.assert_close(pool(states, None, "cls_mean")[1, 8:], states[1, 1:].mean(0))


def test_dtype_is_preserved(states: torch.Tensor) -> None:
    assert pool(states.bfloat16(), None, "cls_mean").dtype == torch.bfloat16


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pooled_dim_matches_output(states: torch.Tensor, mode: str) -> None:
    assert pool(states, None, mode).shape[-1] == pooled_dim(8, mode)


def test_bad_inputs_raise_clear_errors(states: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="pooling mode"):
        pool(states, None, "max")
    with pytest.raises(ValueError, match="batch, tokens, hidden"):
        pool(states[0], None, "cls")
    with pytest.raises(ValueError, match="attention_mask of shape"):
        pool(states, torch.ones(2, 4), "mean")
