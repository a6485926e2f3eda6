"""A trained checkpoint's auto-accept thresholds per input kind, refitted on reviewed answers.

``train`` measures each kind's thresholds (title + photo, title, photo) on a random share of
the training feed. On newer products they can be too low: measured on a fashion checkpoint's
products of later years, its "98%" photo-only threshold gave 0.80. A team that reviews a sample
of the products it now receives refits them here. For each input kind the reviewed products
carry, the threshold of each target precision is the lowest confidence at which the reviewed
answers reach it as measured, resting on at least 30 reviews with its 95% interval
(:func:`~multimodal_cat.calibration.reviewed_threshold`). The thresholds are written into the
checkpoint's ``config.json`` (``confidence_thresholds_by_input``), where ``categorize
--target-precision``, ``serve`` and review routing read them; the reviews behind them go to
``reviewed_thresholds.json`` next to it.

A kind with :data:`~multimodal_cat.calibration.MIN_REVIEWS` or more reviews whose answers reach a
target at no threshold gets a threshold just above 1: nothing of that kind is auto-accepted
for that target. A kind with fewer reviews keeps what ``train`` stored.

Example:
    >>> fit = fit_checkpoint_thresholds(predictor, products, labels)  # doctest: +SKIP
    >>> store_checkpoint_thresholds("my-checkpoint", fit, source="reviews.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.calibration import (
    ABOVE_ONE,
    MIN_REVIEWS,
    REVIEW_TARGETS,
    ReviewedThreshold,
    reviewed_right,
    reviewed_threshold,
)
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.modeling.configuration import INPUT_KINDS

__all__ = ["ABOVE_ONE", "CheckpointReviewFit", "fit_checkpoint_thresholds", "store_checkpoint_thresholds"]



@dataclass
class CheckpointReviewFit:
    """Thresholds refitted per input kind, and what they rest on.

    Attributes:
        tables: ``{kind: {str(target): ReviewedThreshold}}`` for the kinds reviewed.
        reviews: Reviewed answers per kind.
        unknown_labels: Reviewed products whose category the checkpoint's tree does not hold.
    """

    tables: dict[str, dict[str, ReviewedThreshold]]
    reviews: dict[str, int]
    unknown_labels: int = 0
    path: Path | None = field(default=None)

    def stored_values(self) -> dict[str, dict[str, float]]:
        """What goes into ``confidence_thresholds_by_input``: kinds with enough reviews only."""
        out: dict[str, dict[str, float]] = {}
        for kind, table in self.tables.items():
            if self.reviews.get(kind, 0) < MIN_REVIEWS:
                continue
            out[kind] = {t: ABOVE_ONE if r.value is None else float(r.value) for t, r in table.items()}
        return out

    def describe(self) -> list[str]:
        """Lines for people: per kind, the reviews and each threshold."""
        lines = []
        for kind, table in self.tables.items():
            count = self.reviews.get(kind, 0)
            kept = "" if count >= MIN_REVIEWS else f" (fewer than {MIN_REVIEWS}: the checkpoint's own thresholds stay)"
            lines.append(f"[{kind}] {count} reviewed answers{kept}")
            lines += [f"[{kind}] " + r.describe() for r in table.values()]
        if self.unknown_labels:
            lines.append(f"{self.unknown_labels} reviewed products named a category the checkpoint does not know (left out)")
        if self.path is not None:
            lines.append(f"stored in {self.path}")
        return lines


def fit_checkpoint_thresholds(
    predictor: Any,
    products: Sequence[Any],
    labels: Sequence[str],
    *,
    targets: Sequence[float] = REVIEW_TARGETS,
) -> CheckpointReviewFit:
    """Refit a checkpoint's thresholds per input kind on reviewed answers.

    Args:
        predictor: A :class:`~multimodal_cat.predictors.checkpoint.ModelPredictor`.
        products: The reviewed products, as sent (with their photos where they had one).
        labels: The category each was reviewed into (id or full path).
        targets: The precisions to choose thresholds for.
    """
    if len(products) != len(labels):
        raise InvalidArgumentError(
            f"expected one label per reviewed product; found {len(labels)} labels for {len(products)} products"
        )
    predictions = predictor.predict(list(products)) if len(products) else []
    right, kept = reviewed_right(predictor.taxonomy, [p.category_id for p in predictions], labels)
    confidence = np.array([predictions[i].confidence for i in kept], dtype=np.float64)
    kinds = np.array([predictions[i].inputs for i in kept])
    tables, reviews = {}, {}
    for kind in INPUT_KINDS:
        rows = kinds == kind
        if rows.any():
            reviews[kind] = int(rows.sum())
            tables[kind] = {
                str(t): reviewed_threshold(confidence[rows], right[rows], t, expected=False) for t in targets
            }
    return CheckpointReviewFit(tables, reviews, len(labels) - len(kept))


def store_checkpoint_thresholds(folder: str | Path, fit: CheckpointReviewFit, *, source: str = "") -> Path:
    """Write the refitted thresholds into the checkpoint folder's ``config.json`` and the
    reviews behind them into ``reviewed_thresholds.json``; returns the config's path."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InvalidArgumentError(f"expected a checkpoint folder with a config.json; found none in {folder}")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    table = dict(config.get("confidence_thresholds_by_input") or {})
    for kind, values in fit.stored_values().items():
        table[kind] = {**table.get(kind, {}), **values}
    config["confidence_thresholds_by_input"] = table
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    record = {
        "source": source,
        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reviews": fit.reviews,
        "unknown_labels": fit.unknown_labels,
        "thresholds": {
            kind: {t: {**vars(r), "interval": list(r.interval)} for t, r in tab.items()}
            for kind, tab in fit.tables.items()
        },
    }
    (folder / "reviewed_thresholds.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    fit.path = config_path
    return config_path
