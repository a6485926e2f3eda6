"""Linear probes: what category a photo alone, or a title alone, says a product is.

A :class:`KindProbe` is a logistic regression on one kind of unit vector (text or image),
fitted on a catalog's categories. It serves two concerns with one model: the images audit
compares the photo's distribution with the title's (a swapped photo), and similar-product
search favours results of the category the query is predicted to be (a shopper's photo
alone, a title alone, or both: :func:`combine` multiplies the two distributions over the
classes' shares, as independent evidence of one category). Probes read the unit vectors
times ``sqrt(dim)`` (about unit variance per feature, whatever the encoder), with
:data:`PROBE_C` chosen on fashion's validation split; a probe is kept as plain arrays (no
scikit-learn needed to query it) and saved with the index.

Example:
    >>> import numpy as np
    >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    >>> probe = KindProbe.fit(x, ["A > a", "A > a", "B", "B"])
    >>> probe.classes, probe.predict_proba(np.array([[1.0, 0.0]])).argmax(axis=1)
    (['A > a', 'B'], array([0]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROBE_C = 0.3  # on sqrt(dim)-scaled vectors: image log-loss 0.47 vs 0.74 at C=10 unscaled
PROBE_MAX_ROWS = 20_000  # a probe is fitted on at most this many rows (a random sample)
ABSENT = -1e4  # the logit of a class the probe never saw (probability 0)


def probe_inputs(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors scaled by ``sqrt(dim)``: about unit variance per feature, so one
    regularisation suits any encoder's width."""
    vectors = np.asarray(vectors, np.float32)
    return vectors * np.float32(np.sqrt(vectors.shape[1]))


def probe_model() -> Any:
    """The probes' logistic regression (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=PROBE_C, max_iter=300)


def probe_rows(n: int, max_rows: int = PROBE_MAX_ROWS, seed: int = 0) -> np.ndarray:
    """Positions of the rows a probe is fitted on, in order: all ``n``, or a random sample
    of ``max_rows`` (fixed by ``seed``) so that a large catalog reads only those vectors.

    Example:
        >>> probe_rows(5, max_rows=3).tolist()
        [2, 3, 4]
    """
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def class_shares(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Each class's share of ``labels``."""
    code = {name: c for c, name in enumerate(classes)}
    counts = np.bincount([code[label] for label in labels], minlength=len(classes))
    return counts / max(1, counts.sum())


@dataclass
class KindProbe:
    """A fitted probe as arrays: ``softmax(probe_inputs(x) @ coef.T + intercept)``.

    Attributes:
        classes: category paths (columns of the probabilities).
        coef: (classes, dim) weights.
        intercept: (classes,) biases (:data:`ABSENT` for a class the probe never saw).
        prior: each class's share of the labels it was fitted on.
    """

    classes: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    prior: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Sequence[str], *,
            classes: Sequence[str] | None = None, max_rows: int = PROBE_MAX_ROWS,
            seed: int = 0, prior_labels: Sequence[str] | None = None) -> KindProbe:
        """Fit on unit ``vectors`` and their category ``labels`` (at least two categories).

        Args:
            classes: the columns to answer over (default: the labels' categories); classes
                absent from the labels get probability 0.
            max_rows: fit on a random sample of at most this many rows (:func:`probe_rows`).
            prior_labels: the labels the class shares are counted on, when ``vectors`` are
                already a sample of them (default: ``labels``).
        """
        all_labels = [str(x) for x in (labels if prior_labels is None else prior_labels)]
        labels = np.asarray(labels, dtype=object)
        rows = probe_rows(len(labels), max_rows, seed)
        model = probe_model().fit(probe_inputs(vectors[rows]), labels[rows].astype(str))
        seen = [str(c) for c in model.classes_]
        coef, intercept = model.coef_, model.intercept_
        if len(seen) == 2:  # a binary regression keeps one row: softmax([0, z]) = sigmoid(z)
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        classes = list(classes) if classes is not None else seen
        column = {name: c for c, name in enumerate(classes)}
        full_coef = np.zeros((len(classes), coef.shape[1]), np.float32)
        full_intercept = np.full(len(classes), ABSENT, np.float32)
        for c, name in enumerate(seen):
            full_coef[column[name]], full_intercept[column[name]] = coef[c], intercept[c]
        return cls(classes, full_coef, full_intercept, class_shares(all_labels, classes))

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """(n, classes) probabilities; zero rows for zero vectors (no such input)."""
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        logits = probe_inputs(vectors) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        out = np.exp(logits)
        out /= out.sum(axis=1, keepdims=True)
        out[~np.any(vectors != 0, axis=1)] = 0.0
        return out


def combine(text: np.ndarray | None, image: np.ndarray | None, prior: np.ndarray) -> np.ndarray:
    """One distribution from the text and the image distributions (rows over the same
    classes; a zero row: that input is missing), as independent evidence of one category:
    ``p_text(c) p_image(c) / prior(c)``, normalised.

    Example:
        >>> prior = np.array([0.5, 0.5])
        >>> combine(np.array([[0.8, 0.2]]), np.array([[0.8, 0.2]]), prior).round(3)
        array([[0.941, 0.059]])
    """
    parts = [p for p in (text, image) if p is not None]
    if len(parts) == 1:
        return parts[0]
    text, image = parts
    joint = text * image / np.where(prior > 0, prior, 1.0)
    joint = np.where(~text.any(axis=1, keepdims=True), image, joint)
    joint = np.where(~image.any(axis=1, keepdims=True), text, joint)
    total = joint.sum(axis=1, keepdims=True)
    return np.divide(joint, total, out=np.zeros_like(joint), where=total > 0)


def save_probes(path: Path, probes: dict[str, KindProbe]) -> None:
    """Write probes over one class list to an ``.npz`` file (removed when there are none)."""
    path.unlink(missing_ok=True)
    if not probes:
        return
    arrays = {"classes": np.array(next(iter(probes.values())).classes)}
    for modality, probe in probes.items():
        arrays.update({f"{modality}_coef": probe.coef, f"{modality}_intercept": probe.intercept,
                       f"{modality}_prior": probe.prior})
    np.savez(path, **arrays)


def load_probes(path: Path) -> dict[str, KindProbe]:
    """Probes written by :func:`save_probes` (none when the file is missing)."""
    if not path.is_file():
        return {}
    with np.load(path) as arrays:
        classes = [str(c) for c in arrays["classes"]]
        return {m: KindProbe(classes, arrays[f"{m}_coef"], arrays[f"{m}_intercept"],
                             arrays[f"{m}_prior"])
                for m in ("text", "image") if f"{m}_coef" in arrays}
