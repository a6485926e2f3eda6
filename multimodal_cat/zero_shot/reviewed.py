"""Where a tree's calibration from reviewed answers is kept, so every entry point finds it.

``multimodal-cat calibrate`` (and :func:`multimodal_cat.calibration.calibrate_from_reviews`)
writes one JSON file per tree and text encoder into the calibration folder:
``$MULTIMODAL_CAT_CALIBRATION`` when set, else ``~/.local/share/multimodal_cat/calibration``.
The file is named by a digest of the tree (its ids and paths) and the encoder's cache key, so
a changed tree or another encoder never reads a calibration made for something else. The
zero-shot predictor loads it when it starts; ``categorize --target-precision``, the service and
``Categorizer.predict(target_precision=...)`` then route at its thresholds.

Example:
    >>> import os, tempfile
    >>> from multimodal_cat.calibration import fit_review_calibration
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> os.environ["MULTIMODAL_CAT_CALIBRATION"] = tempfile.mkdtemp()
    >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Tools > Drills"])
    >>> _ = save_calibration(tree, "minilm", fit_review_calibration([0.9] * 60, [True] * 60))
    >>> load_calibration(tree, "minilm").reviews
    60
    >>> load_calibration(tree, "other-encoder") is None
    True
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.calibration import (
    REVIEW_TARGETS,
    ReviewCalibration,
    fit_review_calibration,
    reviewed_right,
)
from multimodal_cat.errors import ConfigurationError, InvalidArgumentError
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.store import tree_digest

ENV = "MULTIMODAL_CAT_CALIBRATION"
FORMAT = 1


def calibration_dir() -> Path:
    """The folder that holds reviewed calibrations."""
    configured = os.environ.get(ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".local" / "share" / "multimodal_cat" / "calibration"


def calibration_file(taxonomy: Taxonomy, encoder_key: str) -> Path:
    """The file of ``taxonomy``'s calibration for the encoder whose cache key is ``encoder_key``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(encoder_key))[:60]
    return calibration_dir() / f"{tree_digest(taxonomy)[:16]}-{safe}.json"


def save_calibration(
    taxonomy: Taxonomy, encoder_key: str, calibration: ReviewCalibration, *, source: str = ""
) -> Path:
    """Write ``calibration`` where :func:`load_calibration` finds it; returns the file."""
    path = calibration_file(taxonomy, encoder_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "tree": str(taxonomy.name),
        "tree_digest": tree_digest(taxonomy),
        "encoder_key": str(encoder_key),
        "source": source,
        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **calibration.to_dict(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load_calibration(taxonomy: Taxonomy, encoder_key: str) -> ReviewCalibration | None:
    """The stored calibration of ``taxonomy`` for this encoder, or ``None`` when there is none.

    Raises:
        ConfigurationError: the file exists but cannot be read (names the file to delete).
    """
    path = calibration_file(taxonomy, encoder_key)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("tree_digest") != tree_digest(taxonomy):
            return None
        return ReviewCalibration.from_dict(record)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            f"{path}: expected a reviewed calibration written by 'multimodal-cat calibrate'; "
            f"could not read it ({error}); delete it or run calibrate again"
        ) from None


@dataclass
class ReviewFit:
    """What :func:`calibrate_from_reviews` fitted and where it stored it.

    Attributes:
        calibration: the fitted calibration.
        path: the file it was stored in (``None`` with ``store=False``).
        unknown_labels: reviewed products whose category is not in the tree (left out).
    """

    calibration: ReviewCalibration
    path: Path | None
    unknown_labels: int = 0

    def describe(self) -> list[str]:
        """Lines for people."""
        lines = self.calibration.describe()
        if self.unknown_labels:
            lines.append(f"{self.unknown_labels} reviewed products named a category not in the tree (left out)")
        if self.path is not None:
            lines.append(f"stored in {self.path}")
        return lines


def reviewed_answers(predictor: Any, products: Sequence[Any], labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(confidence, right, unknown)``: the predictor's own confidence on each reviewed
    product (its reviewed calibration and feed shift set aside) and whether its answer is the reviewed
    category or a branch above it; products whose label is not in the tree are left out."""
    predictor._prepare()
    stored, predictor.calibration_ = predictor.calibration_, None
    feed, predictor.feed_calibration = predictor.feed_calibration, False
    try:  # the model's own confidence: no stored calibration, no shift from the reviewed rows
        predictions = predictor.predict(list(products)) if len(products) else []
    finally:
        predictor.calibration_, predictor.feed_calibration = stored, feed
    right, keep = reviewed_right(predictor.taxonomy, [p.category_id for p in predictions], labels)
    confidence = np.array([predictions[i].confidence for i in keep], dtype=np.float64)
    return confidence, right, len(labels) - len(keep)


def calibrate_from_reviews(
    predictor: Any,
    products: Sequence[Any],
    labels: Sequence[str],
    *,
    targets: Sequence[float] = REVIEW_TARGETS,
    store: bool = True,
    source: str = "",
) -> ReviewFit:
    """Fit a tree's confidence temperature and auto-accept thresholds from reviewed answers,
    and store them where ``categorize --target-precision``, the service and
    ``Categorizer.predict`` find them.

    Args:
        predictor: a :class:`~multimodal_cat.predictors.zero_shot.ZeroShotCategorizer`.
        products: the reviewed products (titles or :class:`~multimodal_cat.products.Product`).
        labels: the category each was reviewed into (id or full path).
        targets: the precisions to choose thresholds for.
        store: write the calibration into :func:`calibration_dir`.
        source: where the reviews came from, kept in the stored file.

    Example:
        >>> from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
        >>> zs = ZeroShotCategorizer(Taxonomy.from_paths(["Toys > Dolls", "Tools > Drills"]), None)
        >>> fit = calibrate_from_reviews(zs, ["doll"] * 10, ["Toys > Dolls"] * 10, store=False)
        >>> fit.calibration.threshold(0.95).note
        'too few reviews: 10 < 50'
    """
    if len(products) != len(labels):
        raise InvalidArgumentError(
            f"expected one label per reviewed product; found {len(labels)} labels for {len(products)} products"
        )
    confidence, right, unknown = reviewed_answers(predictor, products, labels)
    calibration = fit_review_calibration(confidence, right, targets)
    path = None
    if store:
        key = "none" if predictor.encoder_ is None else str(predictor.encoder_.key)
        path = save_calibration(predictor.taxonomy, key, calibration, source=source)
        predictor.calibration_ = calibration
    return ReviewFit(calibration, path, unknown)
