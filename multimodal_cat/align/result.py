"""What an alignment returns: the mapping, the rules to review, timings and details."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multimodal_cat.align.backoff import Choice
from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.mapping import Mapping

__all__ = ["AlignmentResult", "ReviewItem", "review_item"]


@dataclass(frozen=True)
class ReviewItem:
    """An inferred rule to check by hand, with the runner-up candidate.

    ``kind`` says how the target was chosen (``best``, ``back-off``, ``root-assignment``,
    ``family-assignment``); ``reason`` why the rule is on the review list.
    """

    source_id: str
    source_path: str
    target_id: str
    target_path: str
    confidence: float
    runner_up_id: str = ""
    runner_up_path: str = ""
    runner_up_confidence: float = 0.0
    kind: str = "best"
    reason: str = ""


@dataclass
class AlignmentResult:
    """What :meth:`MappingAligner.align` returns.

    Attributes:
        mapping: published rules kept as they are, plus ``inferred`` rules with confidences.
        review: the rules to check (see :mod:`multimodal_cat.align.review`): the least
            confident first, then the structurally suspicious ones, each with its ``reason``.
        timings: seconds spent embedding the trees and inferring the rules.
        details: ``mode`` (``same-language`` or ``cross-language``, see
            :mod:`~multimodal_cat.align.mode`) and ``mode_reason`` (why, in words);
            ``languages`` and ``language_evidence`` (each tree's detected language, see
            :mod:`~multimodal_cat.align.language`); ``encoder`` (the text encoder that ran);
            ``warnings`` (e.g. an English-only encoder on a tree in another language);
            ``lexical_share`` (share of source categories with a shared path prefix or a
            same-named target); ``ranker`` (``default``; ``semantic`` across languages;
            ``fitted/given``) and ``family_structure``.
    """

    mapping: Mapping
    review: list[ReviewItem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    def write_review_csv(self, path: str | Path) -> Path:
        """Write the review list as CSV (one row per rule, header included)."""
        path = Path(path)
        names = list(ReviewItem.__dataclass_fields__)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            for item in self.review:
                writer.writerow(asdict(item))
        return path


def review_item(
    source: TreeView, target: TreeView, s: int, cands: np.ndarray, probs: np.ndarray, choice: Choice
) -> ReviewItem:
    """The record of source ``s``'s chosen target, with the most probable other candidate."""
    best = choice.position
    order = np.argsort(-probs, kind="stable")
    runner = [j for j in order.tolist() if int(cands[j]) != best][:1]
    second = int(cands[runner[0]]) if runner else -1
    return ReviewItem(
        source.ids[s],
        source.paths[s],
        target.ids[best],
        target.paths[best],
        round(float(np.clip(choice.confidence, 0.0, 1.0)), 4),
        target.ids[second] if second >= 0 else "",
        target.paths[second] if second >= 0 else "",
        round(float(probs[runner[0]]), 4) if runner else 0.0,
        choice.kind,
    )
