"""Confidence that means something: softmax temperature, its fit, and calibration error.

Scores become probabilities with a softmax at temperature ``T``; ``T`` is fitted by
minimising the negative log-likelihood on held-out labelled rows (:func:`fit_temperature`),
and :func:`expected_calibration_error` says how far the confidences are from the observed
accuracy (10 equal-width bins).

Example:
    >>> probs = softmax(np.array([[2.0, 1.0, 0.0]]), temperature=1.0)
    >>> [round(float(p), 3) for p in probs[0]]
    [0.665, 0.245, 0.09]
    >>> expected_calibration_error(np.array([0.9, 0.9]), np.array([True, False]))
    0.4
"""

from __future__ import annotations

import numpy as np

# Fitted (NLL) on the Flipkart non-test rows (benchmarks/zero_shot_general.py). On fashion,
# where zero-shot is right far more often, the same temperature is under-confident.
DEFAULT_TEMPERATURE = 0.086


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (rows sum to 1)."""
    if temperature <= 0:
        raise ValueError(f"expected a positive temperature; got {temperature}")
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(scores: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of column ``labels`` under ``softmax(scores / T)``."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def fit_temperature(
    scores: np.ndarray, labels: np.ndarray, grid: np.ndarray | None = None
) -> float:
    """The temperature with the lowest NLL on labelled rows (a log-spaced grid, then refined).

    Raises:
        ValueError: ``scores`` and ``labels`` do not have one label per row.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or len(labels) != len(scores):
        raise ValueError(
            f"expected scores (n, classes) and n labels; got {scores.shape} and {labels.shape}"
        )
    grid = np.geomspace(0.003, 1.0, 41) if grid is None else grid
    best = min(grid, key=lambda t: nll(scores, labels, t))
    fine = np.geomspace(best / 1.2, best * 1.2, 21)
    return float(min(fine, key=lambda t: nll(scores, labels, t)))


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> list[dict[str, float]]:
    """Per confidence bin (equal width): its share of rows, mean confidence and accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
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
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Share-weighted mean gap between confidence and accuracy over ``bins`` bins."""
    table = reliability(confidence, correct, bins)
    gap = sum(b["share"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["share"])
    return round(float(gap), 6)
