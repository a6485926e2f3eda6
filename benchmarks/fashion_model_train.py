"""Train the library's ``MultimodalCatModel`` head on cached embeddings with a plain torch loop.

The ``Trainer`` works on the same model (``EmbeddingCollator``), but for a head of well under a
million weights its per-step overhead dominates on 2 cores; this loop slices in-memory tensors.

Example:
    >>> spec = HeadSpec(modalities=("image", "text"), epochs=8)  # doctest: +SKIP
    >>> model, seconds = train_head(table, table.rows("train"), spec)  # doctest: +SKIP
    >>> probs, tag_logits = predict(model, table, table.rows("test"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import torch

from benchmarks.fashion_model_data import FashionTable
from multimodal_cat.modeling import MultimodalCatConfig, MultimodalCatModel
from multimodal_cat.training.sampling import repeat_indices


@dataclass(frozen=True)
class HeadSpec:
    """Everything that defines one head training run (chosen on validation)."""

    modalities: tuple[str, ...] = ("image", "text")
    fusion_type: str = "concat"
    projection_dim: int = 256
    fusion_hidden_dim: int = 512
    dropout: float = 0.1
    modality_dropout: float = 0.0
    label_smoothing: float = 0.0
    class_weight_power: float = 0.0  # weight = (1 / count) ** power, normalised to mean 1
    # share of imaged training rows whose title embedding is swapped for the brand-only one
    brand_share: float = 0.0
    # each imaged training row is shown this many times per epoch (the library's
    # ``repeat_imaged_rows`` / ``train --imaged-row-repeats``): 3/4 of the rows have no image
    imaged_repeats: int = 1
    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 512
    weight_decay: float = 0.01
    tag_loss_weight: float = 0.5
    bf16: bool = True  # bf16 autocast for the head's matmuls (AMX on this CPU; same val metrics)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> HeadSpec:
        """The spec a results file recorded with :meth:`to_dict` (JSON turns tuples into lists)."""
        return cls(**{**values, "modalities": tuple(values.get("modalities", cls.modalities))})


@cache
def _tower(kind: str):
    """Pretrained tower, loaded once (frozen: only its config matters on the cached path)."""
    from transformers import AutoModel

    from multimodal_cat.encoders import resolve_encoder

    return AutoModel.from_pretrained(resolve_encoder(kind))


def build_model(
    table: FashionTable, spec: HeadSpec, weights: np.ndarray | None
) -> MultimodalCatModel:
    """A ``MultimodalCatModel`` on the frozen DINOv2-S / MiniLM towers with a new head.

    Same as ``MultimodalCatModel.from_encoders(...)``, but the towers are loaded only once.
    """
    vision = _tower("dinov2-small") if "image" in spec.modalities else None
    text = _tower("minilm") if "text" in spec.modalities else None
    config = MultimodalCatConfig.from_vision_text_configs(
        vision.config if vision is not None else None,
        text.config if text is not None else None,
        labels=table.space,
        tags=table.groups,
        freeze_encoders=True,
        fusion_type=spec.fusion_type,
        projection_dim=spec.projection_dim,
        fusion_hidden_dim=spec.fusion_hidden_dim,
        dropout=spec.dropout,
        modality_dropout=spec.modality_dropout,
        label_smoothing=spec.label_smoothing,
        tag_loss_weight=spec.tag_loss_weight,
        vision_pooling="cls_mean",
        text_pooling="mean",
        class_weights=None if weights is None else weights.tolist(),
    )
    return MultimodalCatModel(config, vision_model=vision, text_model=text)


def class_weights(table: FashionTable, rows: np.ndarray, power: float) -> np.ndarray | None:
    """Per-node loss weights ``(1 / count) ** power`` (mean 1 over the trained rows)."""
    if power <= 0:
        return None
    counts = np.bincount(table.labels[rows], minlength=len(table.space)).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0) ** power, 0.0)
    return weights / np.mean(weights[table.labels[rows]])


def _inputs(
    table: FashionTable, rows: np.ndarray, modalities: tuple[str, ...], text_kind: str = "titles"
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if "image" in modalities:
        out["image_embeds"] = torch.from_numpy(table.image[rows])
        out["image_mask"] = torch.from_numpy(table.image_mask[rows])
    if "text" in modalities:
        source, mask = (
            (table.text, table.text_mask)
            if text_kind == "titles"
            else (table.brand, table.brand_mask)
        )
        out["text_embeds"] = torch.from_numpy(source[rows])
        out["text_mask"] = torch.from_numpy(mask[rows])
    return out


def train_head(
    table: FashionTable, rows: np.ndarray, spec: HeadSpec, seed: int = 0
) -> tuple[MultimodalCatModel, float]:
    """Train a fresh model's fusion + heads on ``rows``; return it and the loop's wall seconds."""
    torch.manual_seed(seed)
    if spec.modalities == ("image",):
        rows = rows[table.image_mask[rows]]  # an image-only model trains on imaged rows
    rows = rows[repeat_indices(table.image_mask[rows], spec.imaged_repeats)]
    if len(rows) == 0:
        raise ValueError(
            f"no training rows for modalities {spec.modalities}: expected cached embeddings "
            f"(found {table.cache_found}; run python -m benchmarks.embed_fashion first)"
        )
    model = build_model(table, spec, class_weights(table, rows, spec.class_weight_power))
    data = _inputs(table, rows, spec.modalities)
    labels = torch.from_numpy(table.labels[rows])
    tags = torch.from_numpy(table.tags[rows])
    swap = None
    if spec.brand_share > 0 and "text" in spec.modalities:
        brand = torch.from_numpy(table.brand[rows])
        swap = torch.from_numpy(table.image_mask[rows] & table.brand_mask[rows])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    steps_per_epoch = math.ceil(len(rows) / spec.batch_size)
    total = spec.epochs * steps_per_epoch
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        ),
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(spec.epochs):
        order = torch.randperm(len(rows), generator=generator)
        for begin in range(0, len(rows), spec.batch_size):
            idx = order[begin : begin + spec.batch_size]
            batch = {k: v[idx] for k, v in data.items()}
            if swap is not None:
                use = swap[idx] & (torch.rand(len(idx), generator=generator) < spec.brand_share)
                batch["text_embeds"] = torch.where(use[:, None], brand[idx], batch["text_embeds"])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.bf16):
                loss = model(**batch, labels=labels[idx], tag_labels=tags[idx]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - start
    model.eval()
    return model, seconds


@torch.no_grad()
def predict(
    model: MultimodalCatModel,
    table: FashionTable,
    rows: np.ndarray,
    text_kind: str = "titles",
) -> tuple[np.ndarray, np.ndarray]:
    """Leaf probabilities (rows, n_leaves) and tag logits for ``rows``."""
    modalities = tuple(m for m in ("image", "text") if m in model.fusion.projections)
    data = _inputs(table, rows, modalities, text_kind)
    probs, tags = [], []
    for begin in range(0, len(rows), 4096):
        out = model(**{k: v[begin : begin + 4096] for k, v in data.items()})
        probs.append(torch.softmax(out.category_logits.float(), -1).numpy())
        tags.append(out.tag_logits.float().numpy())
    return np.concatenate(probs), np.concatenate(tags)


def train_ensemble(
    table: FashionTable, rows: np.ndarray, spec: HeadSpec, seeds: tuple[int, ...]
) -> tuple[list[MultimodalCatModel], list[float]]:
    """Train one model per seed (an ensemble of the library's models, averaged at prediction)."""
    models, seconds = [], []
    for seed in seeds:
        model, took = train_head(table, rows, spec, seed)
        models.append(model)
        seconds.append(took)
    return models, seconds


def predict_ensemble(
    models: list[MultimodalCatModel],
    table: FashionTable,
    rows: np.ndarray,
    text_kind: str = "titles",
) -> tuple[np.ndarray, np.ndarray]:
    """Mean leaf probabilities and mean tag logits over ``models``."""
    outs = [predict(m, table, rows, text_kind) for m in models]
    return np.mean([o[0] for o in outs], axis=0), np.mean([o[1] for o in outs], axis=0)
