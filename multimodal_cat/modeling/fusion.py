"""Fusion of the pooled image and text embeddings into one product embedding.

Each modality is projected to ``projection_dim``; a row without an image (or without text)
gets a learned "missing" embedding in its place, so products with one modality work in
training and inference. During training, modality dropout hides one modality of rows that have
both, teaching the model to cope with either missing. Two fusions:

- ``concat``: late fusion, concatenation followed by an MLP;
- ``gated``: a learned per-feature gate mixes the two projections, then the same MLP.

With ``solo=("image",)`` a row that has only an image goes through an MLP of its own instead of
the shared one (any modality may be listed): training rows that lack the text (image-only views)
then teach the image-alone path without pulling the text + image path towards the image, which
cost the fused rows accuracy when one MLP served every mix of inputs
(``benchmarks/fashion_views.py``).

Example:
    >>> fusion = build_fusion("gated", {"image": 16, "text": 8}, projection_dim=4, hidden_dim=6)
    >>> fusion({"image": torch.randn(2, 16), "text": torch.randn(2, 8)},
    ...        {"image": torch.tensor([True, False]), "text": torch.ones(2, dtype=torch.bool)}).shape
    torch.Size([2, 6])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ModalityProjection(nn.Module):
    """LayerNorm + linear projection of one modality, with a learned missing-modality embedding."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.linear = nn.Linear(in_dim, out_dim)
        self.missing = nn.Parameter(torch.zeros(out_dim))
        nn.init.normal_(self.missing, std=0.02)

    def forward(
        self, embeds: torch.Tensor | None, present: torch.Tensor, batch: int
    ) -> torch.Tensor:
        missing = self.missing.unsqueeze(0).expand(batch, -1)
        if embeds is None:
            return missing
        projected = self.linear(self.norm(embeds.to(self.linear.weight.dtype)))
        return torch.where(present.unsqueeze(-1), projected, missing.to(projected.dtype))


def modality_dropout(masks: dict[str, torch.Tensor], p: float) -> dict[str, torch.Tensor]:
    """Hide one modality (chosen at random) of each row that has all of them, with probability ``p``."""
    if p <= 0 or len(masks) < 2:
        return masks
    names = list(masks)
    stacked = torch.stack([masks[n] for n in names], dim=-1)  # (batch, n_modalities)
    full = stacked.all(-1)
    drop_row = full & (torch.rand(full.shape, device=full.device) < p)
    which = torch.randint(len(names), full.shape, device=full.device)
    hidden = drop_row.unsqueeze(-1) & (
        which.unsqueeze(-1) == torch.arange(len(names), device=full.device)
    )
    stacked = stacked & ~hidden
    return {n: stacked[:, i] for i, n in enumerate(names)}


def _mlp(mlp_in: int, hidden_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(mlp_in, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim), nn.Dropout(dropout)
    )


class _Fusion(nn.Module):
    """Shared parts: per-modality projections and the MLP producing the fused embedding
    (plus one MLP per ``solo`` modality, for rows that have only that one)."""

    def __init__(
        self,
        input_dims: dict[str, int],
        projection_dim: int,
        hidden_dim: int,
        dropout: float = 0.1,
        solo: Sequence[str] = (),
    ) -> None:
        super().__init__()
        mlp_in = self.mlp_width(projection_dim, len(input_dims))
        self.projections = nn.ModuleDict(
            {name: ModalityProjection(dim, projection_dim) for name, dim in input_dims.items()}
        )
        self.mlp = _mlp(mlp_in, hidden_dim, dropout)
        solo = [name for name in solo if name in input_dims]  # a one-tower model has no mix
        self.single = None
        if solo and len(input_dims) > 1:
            self.single = nn.ModuleDict({n: _mlp(mlp_in, hidden_dim, dropout) for n in solo})

    @staticmethod
    def mlp_width(projection_dim: int, n_modalities: int) -> int:
        """Width of what the fusion hands its MLP (one projection; concat overrides it)."""
        return projection_dim

    def route(self, mixed: torch.Tensor, masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """The shared MLP over ``mixed``, or a modality's own MLP on rows that have only it."""
        out = self.mlp(mixed)
        if self.single is None:
            return out
        present = torch.stack([masks[n] for n in self.projections], dim=-1)
        for name, mlp in self.single.items():
            alone = masks[name] & (present.sum(-1) == 1)
            if bool(alone.any()):
                out = torch.where(alone.unsqueeze(-1), mlp(mixed), out)
        return out

    def project(
        self, embeds: dict[str, torch.Tensor | None], masks: dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        batch = next(m.shape[0] for m in masks.values())
        return [
            proj(embeds.get(name), masks[name], batch) for name, proj in self.projections.items()
        ]


class ConcatFusion(_Fusion):
    """Late fusion: concatenate the projections, then an MLP."""

    @staticmethod
    def mlp_width(projection_dim: int, n_modalities: int) -> int:
        return projection_dim * n_modalities

    def forward(
        self, embeds: dict[str, torch.Tensor | None], masks: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.route(torch.cat(self.project(embeds, masks), dim=-1), masks)


class GatedFusion(_Fusion):
    """Gated fusion: ``sum_m g_m * h_m`` with per-feature gates from all projections, then an MLP."""

    def __init__(
        self,
        input_dims: dict[str, int],
        projection_dim: int,
        hidden_dim: int,
        dropout: float = 0.1,
        solo: Sequence[str] = (),
    ):
        super().__init__(input_dims, projection_dim, hidden_dim, dropout, solo)
        self.gate = nn.Linear(projection_dim * len(input_dims), projection_dim * len(input_dims))
        self.n_modalities = len(input_dims)

    def forward(
        self, embeds: dict[str, torch.Tensor | None], masks: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        parts = self.project(embeds, masks)
        stacked = torch.stack(parts, dim=1)  # (batch, n_modalities, dim)
        gates = self.gate(torch.cat(parts, dim=-1)).view_as(stacked)
        present = torch.stack([masks[n] for n in self.projections], dim=1).unsqueeze(-1)
        gates = gates.masked_fill(~present, -1e4) if self.n_modalities > 1 else gates
        weights = torch.softmax(gates, dim=1) if self.n_modalities > 1 else torch.sigmoid(gates)
        return self.route((weights * torch.tanh(stacked)).sum(dim=1), masks)


def build_fusion(
    fusion_type: str,
    input_dims: dict[str, int],
    projection_dim: int,
    hidden_dim: int,
    dropout: float = 0.1,
    solo: Sequence[str] = (),
) -> _Fusion:
    """Build the fusion named ``fusion_type`` (``concat`` or ``gated``); ``solo`` modalities
    get their own MLP for rows that have only them."""
    if fusion_type == "concat":
        return ConcatFusion(input_dims, projection_dim, hidden_dim, dropout, solo)
    if fusion_type == "gated":
        return GatedFusion(input_dims, projection_dim, hidden_dim, dropout, solo)
    raise ValueError(f"Unknown fusion_type {fusion_type!r}; expected 'concat' or 'gated'.")
