"""Route products: accept alone where the library is reliably right, send the rest to people.

:func:`review_reasons` says, in plain words, why one prediction needs a person: its confidence
is under the auto-accept threshold (chosen for a target precision on held-out rows with
:func:`~multimodal_cat.calibration.threshold_for_precision`), the branch is sure but the leaf is
not, the seller's own category disagrees with the predicted one, or (for a trained checkpoint)
the text alone and the image alone confidently name different categories. An empty list means
the product can be accepted without review.

Example:
    >>> from multimodal_cat.predictions import CategoryScore, Prediction
    >>> from multimodal_cat.products import Product
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks", "Tools > Drills"])
    >>> guess = Prediction("Toys > Dolls", "Toys > Dolls", 0.55, alternatives=[
    ...     CategoryScore("Toys > Dolls", "Toys > Dolls", 0.55),
    ...     CategoryScore("Toys > Blocks", "Toys > Blocks", 0.43)])
    >>> review_reasons(guess, Product(seller_category="Tools"), tree, threshold=0.9)
    ['low confidence (0.55 < 0.90)', "branch 'Toys' is sure (0.98) but not the leaf", "seller category 'Tools' disagrees"]
"""

from __future__ import annotations

import math
from typing import Any

from multimodal_cat.calibration import ABOVE_ONE
from multimodal_cat.errors import ConfigurationError
from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy

INPUT_SURE = 0.5  # each input alone must be at least this sure for a disagreement to count


def unusable_confidence(prediction: Prediction) -> str:
    """Why the prediction's confidence cannot be trusted at all (NaN or infinite: a broken
    model, e.g. a diverged training run), as a reason; ``""`` when it is a finite number.

    Example:
        >>> unusable_confidence(Prediction("a", "A", float("nan")))
        'confidence is not a number (nan): the model is broken (a diverged training run?)'
    """
    if math.isfinite(prediction.confidence):
        return ""
    return (
        f"confidence is not a number ({prediction.confidence}): the model is broken "
        "(a diverged training run?)"
    )


def review_reasons(
    prediction: Prediction, product: Product, taxonomy: Taxonomy, *, threshold: float
) -> list[str]:
    """Why ``prediction`` needs a person (empty: accept it as it is). A confidence that is
    not a finite number always needs one."""
    broken = unusable_confidence(prediction)
    if broken:
        return [broken]
    reasons = []
    if prediction.confidence < threshold:
        reasons.append(f"low confidence ({prediction.confidence:.2f} < {threshold:.2f})")
        branch = _sure_branch(prediction, taxonomy, threshold)
        if branch:
            reasons.append(branch)
    if product.seller_category.strip() and _seller_disagrees(prediction, product, taxonomy):
        reasons.append(f"seller category {product.seller_category.strip()!r} disagrees")
    disagreement = _inputs_disagree(prediction)
    if disagreement:
        reasons.append(disagreement)
    return reasons


def _inputs_disagree(prediction: Prediction, sure: float = INPUT_SURE) -> str:
    """The text alone and the image alone each name a different category with probability at
    least ``sure`` (a wrong photo, or a title for another product), as a reason; else ``""``."""
    text, image = prediction.by_input.get("text"), prediction.by_input.get("image")
    if text is None or image is None or text.id == image.id:
        return ""
    if min(text.score, image.score) < sure:
        return ""
    return (
        f"image and text disagree: the image says {image.path!r} ({image.score:.2f}), "
        f"the text {text.path!r} ({text.score:.2f})"
    )


def _sure_branch(prediction: Prediction, taxonomy: Taxonomy, threshold: float) -> str:
    """The nearest ancestor whose listed candidates sum to ``threshold`` (a lower bound of its
    probability: only the top-k alternatives are known), as a reason; ``""`` when none."""
    if prediction.category_id not in taxonomy:
        return ""
    for ancestor in reversed(taxonomy.ancestors(prediction.category_id)):
        mass = sum(
            alt.score
            for alt in prediction.alternatives
            if alt.id in taxonomy and ancestor in taxonomy.ancestors(alt.id, include_self=True)
        )
        if mass >= threshold:
            return f"branch {ancestor.full_path!r} is sure ({mass:.2f}) but not the leaf"
    return ""


def _seller_disagrees(prediction: Prediction, product: Product, taxonomy: Taxonomy) -> bool:
    """The seller's category, read as an id or path of the tree (or its best word match), lies
    on another branch: neither an ancestor nor a descendant of the prediction, nor in the
    same top-level category when only a word match was found."""
    if prediction.category_id not in taxonomy:
        return False
    text = product.seller_category.strip()
    try:
        seller = taxonomy.resolve(text)
        exact = True
    except KeyError:
        matches = taxonomy.search(text, limit=1)
        if not matches:
            return False
        seller, exact = matches[0], False
    predicted = taxonomy[prediction.category_id]
    lineage = {c.id for c in taxonomy.ancestors(predicted.id, include_self=True)}
    if seller.id in lineage or predicted.id in {c.id for c in taxonomy.ancestors(seller.id)}:
        return False
    return exact or seller.path[0] != predicted.path[0]


class ReviewRouter:
    """Marks each prediction of a job ``needs_review`` (with the reasons) or auto-accepted.

    Args:
        taxonomy: The tree the products are categorized in.
        threshold: Auto-accept at or above this confidence (a finite number).
        source: Where the threshold comes from, for the job's summary (e.g. ``"98% precision
            on the checkpoint's held-out rows"``).

    Raises:
        ConfigurationError: The threshold is NaN or infinite.

    Example:
        >>> from multimodal_cat.predictions import Prediction
        >>> from multimodal_cat.taxonomy import Taxonomy
        >>> router = ReviewRouter(Taxonomy.from_paths(["Toys > Dolls"]), threshold=0.8)
        >>> router(Product(), Prediction("Toys > Dolls", "Toys > Dolls", 0.95))
        (False, '')
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        threshold: float,
        source: str = "",
        by_input: dict[str, float] | None = None,  # per-input-kind thresholds
    ) -> None:
        if not math.isfinite(threshold):
            raise ConfigurationError(
                f"expected a finite auto-accept threshold{' (' + source + ')' if source else ''}; "
                f"found {threshold} (thresholds from a diverged training run?)"
            )
        self.taxonomy = taxonomy
        self.threshold = threshold
        self.source = source
        self.seen = self.flagged = 0  # rows routed so far, and how many went to people
        # a product is held to the threshold of what it carries (Prediction.inputs:
        # "text+image", "text", "image") where one is given, else to ``threshold``
        self.by_input = {k: float(v) for k, v in (by_input or {}).items() if math.isfinite(v)}

    def __call__(self, product: Product, prediction: Prediction) -> tuple[bool, str]:
        """``(needs review, reasons joined by '; ')`` for one product."""
        threshold = self.by_input.get(prediction.inputs, self.threshold)
        reasons = review_reasons(prediction, product, self.taxonomy, threshold=threshold)
        self.seen += 1
        self.flagged += bool(reasons)
        return bool(reasons), "; ".join(reasons)

    def __str__(self) -> str:
        share = self.flagged / self.seen if self.seen else 0.0
        return (
            f"{self.flagged:,} of {self.seen:,} categorized rows ({share:.0%}) need review "
            f"(auto-accept at confidence >= {self.threshold:.3f}{'; ' + self.source if self.source else ''})"
        )


class StoredThresholdError(ConfigurationError):
    """A predictor stores no usable auto-accept threshold for the precision asked for."""


def stored_thresholds(predictor: Any) -> dict[str, Any]:
    """The auto-accept thresholds a predictor stores, by target precision
    (``{"0.98": 0.71, ...}``): a calibrated checkpoint's (``config.confidence_thresholds``),
    or a zero-shot tree's fitted on reviewed answers (``multimodal-cat calibrate``); empty
    for other predictors. A checkpoint's thresholds per input kind are its
    ``thresholds_by_input`` (:func:`stored_router` hands them to the router).
    """
    config = getattr(getattr(predictor, "model", None), "config", None)
    table = getattr(config, "confidence_thresholds", None)
    if not table:
        table = getattr(predictor, "confidence_thresholds", None)
    return dict(table or {})


def threshold_source(predictor: Any, target_precision: float) -> str:
    """Where the predictor's stored threshold comes from, in words."""
    calibration = getattr(predictor, "calibration_", None)
    reviewed = calibration.threshold(target_precision) if calibration is not None else None
    if reviewed is None or reviewed.value is None:
        return f"{target_precision:.0%} precision on the checkpoint's held-out rows"
    low, high = reviewed.interval
    return (
        f"{target_precision:.0%} precision on {calibration.reviews} reviewed answers of this tree: "
        f"measured {reviewed.precision:.3f} on the {reviewed.reviews} at or above it "
        f"(95% interval {low:.3f}-{high:.3f})"
    )


def stored_router(predictor: Any, target_precision: float) -> ReviewRouter:
    """A router at the threshold the predictor stores for ``target_precision`` (chosen on a
    checkpoint's held-out rows when it was trained, or on a tree's reviewed answers by
    ``multimodal-cat calibrate``).

    Raises:
        StoredThresholdError: None is stored for that precision (the message lists those that
            are), or the stored value is not a number in [0, 1].

    Example:
        >>> stored_router(object(), 0.98)
        Traceback (most recent call last):
        ...
        multimodal_cat.review.routing.StoredThresholdError: no stored threshold for precision 0.98 in this predictor
    """
    stored, key = stored_thresholds(predictor), str(target_precision)
    if key not in stored:
        known = f" (it stores {', '.join(sorted(stored))})" if stored else ""
        raise StoredThresholdError(f"no stored threshold for precision {key} in this predictor{known}")
    value = stored[key]
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    # just above 1 is how calibration stores "no confidence reaches it" (nothing auto-accepted)
    if not 0.0 <= threshold <= ABOVE_ONE:  # NaN fails too
        raise StoredThresholdError(
            f"the stored threshold for precision {key} is {value!r}; expected a number "
            "between 0 and 1 (config.json confidence_thresholds, or multimodal-cat calibrate)"
        )
    by_input = getattr(predictor, "thresholds_by_input", lambda _: {})(key)  # a checkpoint's, per input kind
    return ReviewRouter(predictor.taxonomy, threshold, threshold_source(predictor, target_precision), by_input)
