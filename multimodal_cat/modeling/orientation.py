"""Is the photo sideways? A small probe on the image tower's output that tells how a photo was
turned, so a sideways or upside-down product photo is read upright instead of answered
confidently wrong (a shirt turned by 90 degrees looks like a shoe to a head trained on upright
catalog photos).

The probe is four-way logistic regression (upright, turned 90, 180 or 270 degrees
counter-clockwise) on the pooled image embedding, fitted after training on a sample of the
training photos turned each way (:mod:`multimodal_cat.training.orientation`) and stored in the
config (``orientation_probe``). One view is not enough to turn a photo safely (a belt or a watch
looks fine either way), so it works in two steps:

1. every photo gets the probe's probability that it is upright; most do, and are read as they
   came (no extra cost);
2. a doubtful photo (upright probability under ``doubt_below``) is also embedded turned by 90, 180
   and 270 degrees, and the four views vote (:meth:`OrientationProbe.turn_of`): turned back by
   ``t``, the photo should look upright, and turned further by ``s`` it should look turned by
   ``s``. Only when that vote is at least ``min_probability`` sure is the photo taken as turned.

What then depends on ``mode``, set at training from held-out photos: ``"turn"`` reads the photo
turned back (its embedding is one of the views already computed); ``"flag"`` (the probe turned
too many held-out upright photos to be trusted with turning) does not turn it but does not trust
it either: a product with text is answered from its text alone, a photo alone keeps its answer
at a confidence scaled by the chance that the vote is wrong. Either way the answer says so in a
warning.

Example:
    >>> probe = OrientationProbe(
    ...     weight=[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], bias=[0.0] * 4,
    ...     min_probability=0.5,
    ... )
    >>> views = torch.tensor([[[0.0, 5.0]], [[-5.0, 0.0]], [[0.0, -5.0]], [[5.0, 0.0]]])
    >>> probe.turn_of(views)[0].tolist()  # the photo came turned by 90 degrees
    [1]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

__all__ = ["TURNS", "OrientationProbe"]

TURNS = (0, 90, 180, 270)  # degrees counter-clockwise (PIL's Image.rotate), the probe's classes


@dataclass
class OrientationProbe:
    """Logistic regression from an image embedding to the turn the photo was given.

    Args:
        weight: (4, embedding size) weights, one row per entry of :data:`TURNS`.
        bias: (4,) biases.
        min_probability: How sure the four views' vote must be before a photo is read turned
            back.
        doubt_below: A photo whose upright probability is under this gets the four-view check.
        mode: ``"turn"`` (read a turned photo turned back) or ``"flag"`` (do not trust it).
        figures: How it was fitted (photos, held-out figures).
    """

    weight: list[list[float]]
    bias: list[float]
    min_probability: float = 0.9
    doubt_below: float = 0.5
    mode: str = "turn"
    figures: dict[str, Any] = field(default_factory=dict)

    def log_probabilities(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(..., 4) log-probability of each turn in :data:`TURNS`."""
        weight = torch.tensor(self.weight, dtype=torch.float32, device=image_embeds.device)
        bias = torch.tensor(self.bias, dtype=torch.float32, device=image_embeds.device)
        return torch.log_softmax(image_embeds.float() @ weight.T + bias, dim=-1)

    def doubtful(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(n,) photos that may not be upright (they get the four-view check)."""
        return self.log_probabilities(image_embeds)[:, 0].exp() < self.doubt_below

    def turn_of(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How each photo came turned, from ``views`` (4, n, dim): the embeddings of each photo
        turned further by each entry of :data:`TURNS` (``views[0]``: as it came).

        Returns:
            (n,) index into :data:`TURNS` (0: read it as it came, also when the vote is less
            than ``min_probability`` sure) and (n,) the vote's probability of that turn.
        """
        log_p = self.log_probabilities(views)  # (4 views, n, 4 classes)
        n_turns = len(TURNS)
        score = torch.stack([
            sum(log_p[(s - t) % n_turns, :, s] for s in range(n_turns)) for t in range(n_turns)
        ], dim=-1)
        sure, turn = torch.softmax(score, dim=-1).max(dim=-1)
        return torch.where(sure >= self.min_probability, turn, torch.zeros_like(turn)), sure

    def to_dict(self) -> dict[str, Any]:
        """What the config stores (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any] | None) -> OrientationProbe | None:
        """The probe a config stores; ``None`` when it stores none (models trained before it)."""
        if not stored:
            return None
        return cls(**stored)

