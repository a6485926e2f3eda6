"""The output record of :class:`~multimodal_cat.modeling.MultimodalCatModel`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class MultimodalCatOutput(ModelOutput):
    """What ``MultimodalCatModel.forward`` returns.

    Attributes:
        loss: Category loss plus weighted tag loss; only when ``labels`` or ``tag_labels`` are given.
        category_logits: (batch, n_leaves) scores of the tree's leaves (one softmax).
        node_log_probs: (batch, n_nodes) log-probability of every taxonomy node; an inner
            node's probability is the sum over the leaves under it.
        tag_logits: (batch, n_tag_values) raw tag scores, ``None`` without tag groups.
        image_embeds: (batch, d_image) pooled image tower output, ``None`` without images.
        text_embeds: (batch, d_text) pooled text tower output, ``None`` without text.
        fused_embeds: (batch, fusion_hidden_dim) the product embedding the heads read.
        image_mask: (batch,) rows that had an image.
        text_mask: (batch,) rows that had text.
    """

    loss: torch.FloatTensor | None = None
    category_logits: torch.FloatTensor | None = None
    node_log_probs: torch.FloatTensor | None = None
    tag_logits: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    fused_embeds: torch.FloatTensor | None = None
    image_mask: torch.BoolTensor | None = None
    text_mask: torch.BoolTensor | None = None
