"""Prediction heads: a hierarchical category head and a grouped tag head.

The category head scores the leaves of the tree with one softmax; the probability of an inner
node is the sum of the probabilities of the leaves under it, so every node of the tree gets a
log-probability and the loss can sit on the deepest node a product is labelled with
("Apparel > Shoes" trains the mass of all shoe leaves). Decoding the leaf argmax always yields a
path that exists in the tree.

Example:
    >>> space = LabelSpace.from_paths(["A > B", "A > C", "D"])
    >>> head = HierarchicalHead(space, in_dim=8)
    >>> head(torch.randn(2, 8)).node_log_probs.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from multimodal_cat.modeling.labels import LabelSpace, TagGroup, value_slices
from multimodal_cat.taxonomy.index import IGNORE_INDEX

__all__ = ["IGNORE_INDEX", "HeadOutput", "HierarchicalHead", "TagHead"]


@dataclass
class HeadOutput:
    """Leaf logits and the log-probability of every node of the tree."""

    leaf_logits: torch.Tensor  # (batch, n_leaves)
    node_log_probs: torch.Tensor  # (batch, n_nodes); log P(node) = logsumexp over its leaves


def _scatter_logsumexp(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """``out[:, j] = logsumexp(values[:, index == j])``; -inf where no value maps to ``j``."""
    batch = values.shape[0]
    expanded = index.unsqueeze(0).expand(batch, -1)
    neg_inf = values.new_full((batch, size), float("-inf"))
    peak = neg_inf.scatter_reduce(1, expanded, values, reduce="amax", include_self=True)
    peak = torch.nan_to_num(peak, neginf=0.0).detach()
    shifted = torch.exp(values - peak.gather(1, expanded))
    total = values.new_zeros((batch, size)).scatter_add(1, expanded, shifted)
    # total >= 1 wherever some value maps to j; the clamp only touches empty slots, which
    # callers mask out, and keeps their gradient at zero instead of NaN.
    return torch.log(total.clamp_min(1e-30)) + peak


class HierarchicalHead(nn.Module):
    """Leaf softmax whose inner-node probabilities are sums over their subtrees.

    Args:
        space: The taxonomy nodes.
        in_dim: Width of the fused embedding.
    """

    def __init__(self, space: LabelSpace, in_dim: int) -> None:
        super().__init__()
        self.num_nodes = len(space)
        leaf_position = {node: i for i, node in enumerate(space.leaves)}
        self.classifier = nn.Linear(in_dim, len(leaf_position))
        by_depth = space.levels
        position = {node: i for level in by_depth for i, node in enumerate(level)}
        # Plain CPU tensors, not buffers: they derive from the config, never from the checkpoint,
        # and from_pretrained builds modules under a meta-device context.
        cpu = torch.device("cpu")
        self._levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for level in by_depth:  # root level first
            is_leaf = torch.tensor([n in leaf_position for n in level], device=cpu)
            leaf_index = torch.tensor([leaf_position.get(n, 0) for n in level], device=cpu)
            parent_pos = torch.tensor(
                [position.get(space.parents[n], 0) for n in level], device=cpu
            )
            self._levels.append((is_leaf, leaf_index, parent_pos))
        order = [node for level in by_depth for node in level]
        inverse = [0] * len(order)
        for i, node in enumerate(order):
            inverse[node] = i
        self._node_order = torch.tensor(inverse, dtype=torch.long, device=cpu)
        self._device_cache: dict[torch.device, tuple[list, torch.Tensor]] = {}

    def _indices(self, device: torch.device) -> tuple[list, torch.Tensor]:
        if device not in self._device_cache:
            levels = [tuple(t.to(device) for t in level) for level in self._levels]
            self._device_cache[device] = (levels, self._node_order.to(device))
        return self._device_cache[device]

    def node_log_probs(self, leaf_logits: torch.Tensor) -> torch.Tensor:
        """Log-probability of every node from the leaf logits, computed in log space, level by level."""
        levels, node_order = self._indices(leaf_logits.device)
        leaf_log_probs = torch.log_softmax(leaf_logits.float(), dim=-1)
        per_level: list[torch.Tensor] = []
        below: tuple[torch.Tensor, torch.Tensor] | None = (
            None  # (values, parent positions) one level down
        )
        for is_leaf, leaf_index, parent_pos in reversed(levels):
            values = leaf_log_probs[:, leaf_index]
            if below is not None:
                pooled = _scatter_logsumexp(below[0], below[1], len(is_leaf))
                values = torch.where(is_leaf, values, pooled)
            per_level.append(values)
            below = (values, parent_pos)
        return torch.cat(per_level[::-1], dim=1)[:, node_order]

    def forward(self, features: torch.Tensor) -> HeadOutput:
        leaf_logits = self.classifier(features)
        return HeadOutput(leaf_logits, self.node_log_probs(leaf_logits))

    def loss(
        self,
        output: HeadOutput,
        labels: torch.Tensor,
        label_smoothing: float = 0.0,
        class_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean of ``-log P(labelled node)`` over rows whose label is not -100.

        Args:
            output: The head's output.
            labels: (batch,) node indices; -100 for unknown.
            label_smoothing: Share of the loss spread uniformly over the leaves.
            class_weights: Optional (n_nodes,) weights; the mean is weighted by them.
        """
        known = labels != IGNORE_INDEX
        if not bool(known.any()):
            return output.node_log_probs.sum() * 0.0
        rows = output.node_log_probs[known]
        targets = labels[known].long()
        if int(targets.max()) >= self.num_nodes or int(targets.min()) < 0:
            raise ValueError(
                f"Category labels must be node indices in [0, {self.num_nodes}) or -100; "
                f"got values in [{int(targets.min())}, {int(targets.max())}]."
            )
        nll = -rows.gather(1, targets.unsqueeze(1)).squeeze(1)
        if label_smoothing > 0:
            uniform = -torch.log_softmax(output.leaf_logits[known].float(), dim=-1).mean(-1)
            nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
        if class_weights is None:
            return nll.mean()
        weights = class_weights.to(nll.dtype)[targets]
        return (nll * weights).sum() / weights.sum().clamp_min(1e-12)


class TagHead(nn.Module):
    """One linear layer over all tag values; groups are softmax (single) or sigmoid (multi).

    Labels are a (batch, n_values) float tensor of 0/1, with -100 where a value (or a whole
    group) is unknown.
    """

    def __init__(self, groups: list[TagGroup], in_dim: int) -> None:
        super().__init__()
        self.groups = groups
        self.slices = value_slices(groups)
        width = self.slices[-1].stop if self.slices else 0
        self.classifier = nn.Linear(in_dim, width) if width else None

    def forward(self, features: torch.Tensor) -> torch.Tensor | None:
        return self.classifier(features) if self.classifier is not None else None

    def take_groups(
        self, logits: torch.Tensor, other: torch.Tensor, rows: torch.Tensor, names: Sequence[str]
    ) -> torch.Tensor:
        """``logits`` with the columns of the attributes ``names`` taken from ``other`` on ``rows``."""
        out = logits.clone()
        for group, part in zip(self.groups, self.slices, strict=True):
            if group.attribute in names:
                out[rows, part] = other[rows, part]
        return out

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-value probabilities: softmax within single-valued groups, sigmoid otherwise."""
        parts = [
            torch.sigmoid(logits[:, s]) if g.multi_valued else torch.softmax(logits[:, s], dim=-1)
            for g, s in zip(self.groups, self.slices, strict=True)
        ]
        return torch.cat(parts, dim=-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over groups of the softmax / sigmoid loss on rows where the group is known."""
        if labels.shape != logits.shape:
            raise ValueError(
                f"tag_labels must have shape {tuple(logits.shape)} (batch, n_tag_values); "
                f"got {tuple(labels.shape)}."
            )
        labels = labels.to(logits.dtype)
        losses = []
        for group, part in zip(self.groups, self.slices, strict=True):
            target, scores = labels[:, part], logits[:, part].float()
            if group.multi_valued:
                known = target != IGNORE_INDEX
                if bool(known.any()):
                    bce = F.binary_cross_entropy_with_logits(
                        scores[known], target[known].float(), reduction="mean"
                    )
                    losses.append(bce)
                continue
            rows = (target != IGNORE_INDEX).all(-1) & (target.sum(-1) > 0)
            if bool(rows.any()):
                losses.append(F.cross_entropy(scores[rows], target[rows].argmax(-1)))
        if not losses:
            return logits.sum() * 0.0
        return torch.stack(losses).mean()


def training_loss(
    category_head: HierarchicalHead,
    tag_head: TagHead,
    config: Any,
    outputs: tuple[HeadOutput, torch.Tensor | None],
    labels: torch.Tensor | None,
    tag_labels: torch.Tensor | None,
) -> torch.Tensor | None:
    """The category loss (label smoothing, class weights from ``config``) plus
    ``config.tag_loss_weight`` times the tag loss; ``None`` without labels."""
    head, tag_logits = outputs
    losses = []
    if labels is not None:
        weights = None
        if config.class_weights is not None:
            weights = torch.tensor(config.class_weights, device=head.leaf_logits.device)
        device_labels = labels.to(head.leaf_logits.device)
        losses.append(category_head.loss(head, device_labels, config.label_smoothing, weights))
    if tag_labels is not None:
        if tag_logits is None:
            raise ValueError(
                "Got tag_labels but the model has no tag groups (config.tag_groups is empty)."
            )
        tag_loss = tag_head.loss(tag_logits, tag_labels.to(tag_logits.device))
        losses.append(config.tag_loss_weight * tag_loss)
    return torch.stack(losses).sum() if losses else None
