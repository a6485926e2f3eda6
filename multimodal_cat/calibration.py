"""Confidence calibration: temperature scaling, expected calibration error, reliability plots.

A confidence a catalog team can act on must mean what it says: of the products predicted at
0.9, about 90% should be right. :func:`fit_temperature` finds the one temperature that makes a
model's softmax honest on held-out rows; :func:`expected_calibration_error` measures how far
from honest the confidences are; :func:`reliability_diagram` draws it.

Example:
    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    >>> labels = np.array([0, 1, 1, 0])
    >>> t = fit_temperature(logits, labels)
    >>> t > 1.0  # over-confident logits get softened
    True
    >>> round(expected_calibration_error(np.array([0.9, 0.8]), np.array([True, False])), 2)
    0.45
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.errors import InvalidArgumentError

_LOG_T_GRID = np.linspace(np.log(0.01), np.log(100.0), 121)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (rows sum to 1).

    Raises:
        ValueError: the temperature is not positive.
    """
    if temperature <= 0:
        raise InvalidArgumentError(f"expected a positive temperature; got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of column ``labels`` under ``softmax(logits / temperature)``."""
    return _nll(np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64), temperature)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_scale(loss: Callable[[float], float]) -> float:
    """The temperature ``t`` minimising ``loss(t)``: a log-spaced grid over [0.01, 100],
    refined by golden-section steps (no optimiser state, the same answer every run)."""
    losses = [loss(float(np.exp(t))) for t in _LOG_T_GRID]
    best = int(np.argmin(losses))
    low = _LOG_T_GRID[max(best - 1, 0)]
    high = _LOG_T_GRID[min(best + 1, len(_LOG_T_GRID) - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(30):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(float(np.exp(a))) < loss(float(np.exp(b))):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2.0))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    Args:
        logits: ``(n, k)`` scores (log-probabilities work too).
        labels: ``(n,)`` index of the right column of each row.

    Raises:
        ValueError: shapes disagree, a label is out of range or there are no rows.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or not len(labels):
        raise InvalidArgumentError(
            f"expected logits (n, k) and labels (n,) with n > 0; found {logits.shape} and "
            f"{labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise InvalidArgumentError(f"labels must lie in [0, {logits.shape[1]}); found {labels.min()}..{labels.max()}")
    return fit_scale(lambda t: _nll(logits, labels, t))


def _bins(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each confidence: [0, 1/bins), ..., [1 - 1/bins, 1]."""
    return np.clip((confidence * bins).astype(int), 0, bins - 1)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width confidence bin: its share of rows, mean confidence and accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = _bins(confidence, bins)
    out = []
    for b in range(bins):
        rows = which == b
        out.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "share": float(rows.mean()) if len(rows) else 0.0,
                "confidence": float(confidence[rows].mean()) if rows.any() else float("nan"),
                "accuracy": float(correct[rows].mean()) if rows.any() else float("nan"),
            }
        )
    return out


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10
) -> float:
    """Mean gap between confidence and accuracy over equal-width bins, weighted by bin size."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.shape != np.shape(correct) or not len(confidence):
        raise InvalidArgumentError(
            f"expected two equal-length, non-empty arrays; found {confidence.shape} and {np.shape(correct)}"
        )
    return round(_gap(reliability(confidence, correct, bins)), 6)


def _gap(table: list[dict[str, float]]) -> float:
    """Share-weighted mean |accuracy - confidence| over the filled bins of a reliability table."""
    return float(sum(b["share"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["share"]))


@dataclass(frozen=True)
class Threshold:
    """An auto-accept threshold chosen for a target precision.

    Attributes:
        value: Accept a prediction when its confidence is at least this.
        target_precision: What was asked for.
        precision: Precision measured on the rows at or above ``value``.
        share: Share of rows at or above ``value`` (the auto-accepted share).
    """

    value: float
    target_precision: float
    precision: float
    share: float


def threshold_for_precision(
    confidence: np.ndarray, correct: np.ndarray, target_precision: float
) -> Threshold:
    """The lowest confidence threshold whose accepted rows reach ``target_precision``.

    Accepting everything from the most confident row down, the threshold is the last point at
    which the running precision is still at or above the target. When no non-empty set of rows
    reaches it, the threshold is above every confidence (nothing is auto-accepted). Confidences
    that are NaN or infinite are never accepted, so the threshold is always a finite number.

    Example:
        >>> t = threshold_for_precision(np.array([0.99, 0.95, 0.6, 0.5]),
        ...                             np.array([True, True, False, True]), 0.9)
        >>> t.value, t.share
        (0.95, 0.5)
    """
    if not 0.0 < target_precision <= 1.0:
        raise InvalidArgumentError(f"target precision must be in (0, 1]; found {target_precision}")
    # A confidence that is not a finite number (a broken model) is never accepted: it sorts last.
    confidence = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=-np.inf, posinf=-np.inf)
    correct = np.asarray(correct, dtype=np.float64)
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # Only cut between distinct finite confidences: ties are accepted or refused together.
    sorted_conf = confidence[order]
    cuttable = np.append(sorted_conf[1:] < sorted_conf[:-1], True) & np.isfinite(sorted_conf)
    ok = np.flatnonzero((running >= target_precision) & cuttable)
    if not len(ok):
        highest = max(float(sorted_conf[0]) if len(sorted_conf) else 1.0, 1.0)
        return Threshold(float(np.nextafter(highest, 2.0)), target_precision, 0.0, 0.0)
    last = int(ok[-1])
    return Threshold(
        value=float(sorted_conf[last]),
        target_precision=target_precision,
        precision=float(running[last]),
        share=float((last + 1) / len(order)),
    )


def reliability_diagram(
    confidence: np.ndarray,
    correct: np.ndarray,
    path: str | Path,
    *,
    bins: int = 10,
    title: str = "Reliability",
    others: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """Draw accuracy against confidence per bin (with the bin sizes) and save it as a PNG.

    ``others`` adds more curves (e.g. before and after calibration) by label. Needs the
    ``plots`` extra (matplotlib).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "drawing plots needs matplotlib: pip install 'multimodal-cat[plots]'"
        ) from err
    curves = {"predictions": (confidence, correct), **(others or {})}
    edges = np.linspace(0.0, 1.0, bins + 1)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for label, (conf, corr) in curves.items():
        table = reliability(conf, corr, bins)
        filled = [b for b in table if b["share"]]
        ece = _gap(table)
        top.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], marker="o",
                 label=f"{label} (ECE {ece:.3f})")
        counts = [b["share"] * len(conf) for b in table]
        bottom.bar(edges[:-1] + 0.5 / bins, counts, width=0.9 / bins, alpha=0.5, label=label)
    top.set_ylabel("accuracy")
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("rows")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# --- Calibration from a team's own reviews -------------------------------------------------

ABOVE_ONE = math.nextafter(1.0, 2.0)  # a stored threshold that no confidence reaches: accept none
MIN_REVIEWS = 50  # fewer reviewed answers: no temperature or threshold is claimed
MIN_ACCEPTED_REVIEWS = 30  # reviews at or above a threshold that it must rest on
REVIEW_TARGETS = (0.9, 0.95, 0.98)
ANY_INPUT = "any"  # the thresholds' key when they hold for every input type


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a proportion ``successes / n``.

    Example:
        >>> [round(x, 3) for x in wilson_interval(95, 100)]
        [0.888, 0.978]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


def fit_platt(confidence: np.ndarray, correct: np.ndarray, *, prior: float = 1.0) -> tuple[float, float]:
    """``(temperature, bias)`` so that ``sigmoid(logit(confidence) / temperature + bias)``
    matches ``correct`` (Newton steps on the log-likelihood, with a light pull of strength
    ``prior`` towards the identity, so a few reviews move it only a little)."""
    x = _logit(confidence)
    y = np.asarray(correct, dtype=np.float64)
    theta = np.array([1.0, 0.0])  # slope (1 / temperature), bias
    design = np.column_stack([x, np.ones_like(x)])
    for _ in range(50):
        p = np.exp(-np.logaddexp(0.0, -(design @ theta)))
        grad = design.T @ (p - y) + prior * (theta - np.array([1.0, 0.0]))
        hess = (design * (p * (1 - p))[:, None]).T @ design + prior * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    slope = max(float(theta[0]), 1e-3)
    return 1.0 / slope, float(theta[1])


def recalibrate(confidence: np.ndarray, temperature: float, bias: float) -> np.ndarray:
    """``sigmoid(logit(confidence) / temperature + bias)``: a tree's reviewed calibration."""
    z = _logit(confidence) / temperature + bias
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass(frozen=True)
class ReviewedThreshold:
    """An auto-accept threshold chosen on reviewed answers, with what it rests on.

    Attributes:
        target_precision: What was asked for.
        value: Accept at or above this confidence; ``None`` when the reviews cannot support it.
        reviews: Reviewed answers at or above ``value`` (what the precision rests on).
        precision: Their measured precision.
        interval: Its 95% Wilson interval.
        share: Share of the reviewed answers at or above ``value``.
        note: Why there is no threshold, in plain words (empty when there is one).
    """

    target_precision: float
    value: float | None
    reviews: int
    precision: float
    interval: tuple[float, float]
    share: float
    note: str = ""

    def describe(self) -> str:
        """One line for people."""
        if self.value is None:
            return f"precision {self.target_precision:.0%}: no threshold ({self.note})"
        low, high = self.interval
        caveat = (
            f"; more reviews needed to rule out a precision as low as {low:.3f}"
            if low < self.target_precision
            else ""
        )
        return (
            f"precision {self.target_precision:.0%}: auto-accept at confidence >= {self.value:.3f} "
            f"({self.share:.0%} of the reviewed answers; measured {self.precision:.3f} on "
            f"{self.reviews} reviews, 95% interval {low:.3f}-{high:.3f}{caveat})"
        )


def reviewed_right(taxonomy: Any, answers: Sequence[str], labels: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """Whether each answer (a category id) is its reviewed label (an id or full path) or a
    branch above it, and which rows' labels the tree knows (the others are left out).

    Example:
        >>> from multimodal_cat.taxonomy import Taxonomy
        >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Tools"])
        >>> right, kept = reviewed_right(tree, ["Toys", "Tools", "Tools"], ["Toys > Dolls", "Toys", "Cars"])
        >>> right.tolist(), kept
        ([True, False], [0, 1])
    """
    kept, right = [], []
    for i, (answer, label) in enumerate(zip(answers, labels, strict=True)):
        try:
            truth = taxonomy.resolve(str(label).strip()).id
        except KeyError:
            continue
        kept.append(i)
        right.append(answer in {c.id for c in taxonomy.ancestors(truth, include_self=True)})
    return np.array(right, dtype=bool), kept


def reviewed_threshold(
    confidence: np.ndarray, correct: np.ndarray, target_precision: float, *, expected: bool = True
) -> ReviewedThreshold:
    """The lowest threshold at which the reviewed answers reach ``target_precision``, both as
    measured and (``expected``) as the recalibrated confidences expect, resting on at least
    :data:`MIN_ACCEPTED_REVIEWS` reviews; otherwise no threshold, and a note saying why.
    ``expected=False`` asks the measured precision only (confidences not refitted on the
    reviews, such as a trained checkpoint's)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-confidence, kind="stable")
    conf, ok = confidence[order], correct[order].astype(np.float64)
    count = np.arange(1, len(conf) + 1)
    measured = np.cumsum(ok) / count
    cuttable = np.append(conf[1:] < conf[:-1], True)
    agrees = (np.cumsum(conf) / count >= target_precision) if expected else True
    good = np.flatnonzero(
        (measured >= target_precision) & agrees & cuttable
        & (count >= MIN_ACCEPTED_REVIEWS)
    )
    if len(confidence) < MIN_REVIEWS:
        return _no_threshold(
            target_precision, f"too few reviews: {len(confidence)} < {MIN_REVIEWS}"
        )
    if not len(good):
        return _no_threshold(
            target_precision,
            f"not reached: no confidence has {MIN_ACCEPTED_REVIEWS} or more reviewed "
            f"answers above it at precision {target_precision:.0%}",
        )
    last = int(good[-1])
    hits = int(ok[: last + 1].sum())
    return ReviewedThreshold(
        target_precision=target_precision,
        value=float(conf[last]),
        reviews=last + 1,
        precision=float(measured[last]),
        interval=wilson_interval(hits, last + 1),
        share=float((last + 1) / len(conf)),
    )


def _no_threshold(target: float, note: str) -> ReviewedThreshold:
    return ReviewedThreshold(target, None, 0, 0.0, (0.0, 1.0), 0.0, note)


@dataclass(frozen=True)
class ReviewCalibration:
    """A tree's calibration fitted on reviewed answers: a temperature and bias applied to the
    confidence (:func:`recalibrate`) and auto-accept thresholds by input type and precision.

    Attributes:
        reviews: Reviewed answers it was fitted on.
        accuracy: Their share right (as predicted before the calibration).
        temperature, bias: The fitted recalibration (1, 0 is the identity).
        thresholds: ``{input type: {str(target): ReviewedThreshold}}``; :data:`ANY_INPUT`
            holds for every input type.
        note: Why the temperature was not fitted, when it was not.
    """

    reviews: int
    accuracy: float
    temperature: float = 1.0
    bias: float = 0.0
    thresholds: dict[str, dict[str, ReviewedThreshold]] | None = None
    note: str = ""

    def threshold(self, target_precision: float, input_type: str = ANY_INPUT) -> ReviewedThreshold | None:
        """The stored threshold for ``target_precision`` (``None`` when none was fitted)."""
        table = (self.thresholds or {}).get(input_type) or (self.thresholds or {}).get(ANY_INPUT, {})
        return table.get(str(target_precision))

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "reviews": self.reviews,
            "accuracy": self.accuracy,
            "temperature": self.temperature,
            "bias": self.bias,
            "note": self.note,
            "thresholds": {
                kind: {k: {**vars(t), "interval": list(t.interval)} for k, t in table.items()}
                for kind, table in (self.thresholds or {}).items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReviewCalibration:
        """The inverse of :meth:`to_dict`."""
        thresholds = {
            kind: {
                k: ReviewedThreshold(**{**t, "interval": tuple(t["interval"])})
                for k, t in table.items()
            }
            for kind, table in (data.get("thresholds") or {}).items()
        }
        return cls(
            reviews=int(data["reviews"]),
            accuracy=float(data["accuracy"]),
            temperature=float(data.get("temperature", 1.0)),
            bias=float(data.get("bias", 0.0)),
            thresholds=thresholds,
            note=str(data.get("note", "")),
        )

    def describe(self) -> list[str]:
        """Lines for people: what it rests on, the temperature, each threshold."""
        lines = [
            f"{self.reviews} reviewed answers, {self.accuracy:.1%} of them right as predicted",
            self.note
            or f"confidence temperature {self.temperature:.3f}, bias {self.bias:+.3f}",
        ]
        for kind, table in (self.thresholds or {}).items():
            prefix = "" if kind == ANY_INPUT else f"[{kind}] "
            lines += [prefix + t.describe() for t in table.values()]
        return lines


def fit_review_calibration(
    confidence: np.ndarray,
    correct: np.ndarray,
    targets: Sequence[float] = REVIEW_TARGETS,
) -> ReviewCalibration:
    """A :class:`ReviewCalibration` from the confidences of reviewed answers and whether each
    was right. With fewer than :data:`MIN_REVIEWS` reviews nothing is fitted and every
    threshold says "too few reviews".

    Example:
        >>> rng = np.random.default_rng(0)
        >>> conf = rng.uniform(0.5, 1.0, 400)
        >>> calib = fit_review_calibration(conf, rng.uniform(size=400) < conf)
        >>> calib.threshold(0.9).value is not None
        True
        >>> fit_review_calibration(conf[:10], conf[:10] > 0.6).threshold(0.9).note
        'too few reviews: 10 < 50'
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape:
        raise InvalidArgumentError(
            f"expected one right/wrong per confidence; found {correct.shape} and {confidence.shape}"
        )
    accuracy = float(correct.mean()) if len(correct) else 0.0
    if len(confidence) < MIN_REVIEWS:
        note = f"too few reviews to fit a temperature: {len(confidence)} < {MIN_REVIEWS}"
        temperature, bias = 1.0, 0.0
    else:
        note = ""
        temperature, bias = fit_platt(confidence, correct)
    calibrated = recalibrate(confidence, temperature, bias)
    table = {str(t): reviewed_threshold(calibrated, correct, t) for t in targets}
    return ReviewCalibration(len(confidence), accuracy, temperature, bias, {ANY_INPUT: table}, note)
