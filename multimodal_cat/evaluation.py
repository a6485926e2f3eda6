"""Score predictions against labels: per-level accuracy, macro-F1, hierarchical F1, calibration.

:func:`evaluate_predictions` is what :meth:`~multimodal_cat.categorizer.Categorizer.evaluate`
runs; it reuses the training metrics (one definition of each figure) and adds the expected
calibration error, the auto-accept share at target precisions, and, when asked, two PNG
plots a person can open: the reliability diagram and the most confused category pairs.

Example:
    >>> from multimodal_cat.predictions import Prediction
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks"])
    >>> preds = [Prediction("Toys > Dolls", "Toys > Dolls", 0.9), Prediction("Toys > Dolls", "Toys > Dolls", 0.6)]
    >>> report = evaluate_predictions(preds, ["Toys > Dolls", "Toys > Blocks"], tree)
    >>> report.metrics["leaf_accuracy"], report.metrics["level1_accuracy"]
    (0.5, 1.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multimodal_cat.calibration import (
    expected_calibration_error,
    reliability_diagram,
    threshold_for_precision,
)
from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.predictions import Prediction
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.training.metrics import category_metrics

TARGET_PRECISIONS = (0.95, 0.98, 0.99)
MOST_CONFUSED = 15


@dataclass
class EvaluationReport:
    """What :func:`evaluate_predictions` measured.

    Attributes:
        metrics: ``level{d}_accuracy``, ``leaf_accuracy``, ``leaf_macro_f1``, hierarchical
            precision / recall / F1, ``exact`` (predicted node == label), ``ece``.
        auto_accept: Per target precision, the threshold, measured precision and accepted share.
        confused: The most frequent (true path, predicted path, count) mistakes.
        plots: PNG files written (empty unless ``plots_dir`` was given).
        unknown_labels: Labels that are not categories of the tree (left out of every figure).
        per_category: One dict per category seen in the labels or the predictions: ``path``,
            ``support`` (labelled rows), ``predicted``, ``correct``, ``precision``, ``recall``,
            ``f1``; most frequent label first.
    """

    metrics: dict[str, float]
    auto_accept: dict[float, dict[str, float]]
    confused: list[tuple[str, str, int]]
    plots: list[Path] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)
    per_category: list[dict[str, float | int | str]] = field(default_factory=list)


def evaluate_predictions(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    taxonomy: Taxonomy,
    *,
    plots_dir: str | Path | None = None,
    target_precisions: Sequence[float] = TARGET_PRECISIONS,
) -> EvaluationReport:
    """Score ``predictions`` against ``labels`` (category ids or full paths of ``taxonomy``);
    ``auto_accept`` holds the threshold reaching each of ``target_precisions`` on these rows.

    Raises:
        ValueError: the two sequences differ in length, or no label is a category of the tree.
    """
    if len(predictions) != len(labels):
        raise InvalidArgumentError(
            f"expected one label per prediction; found {len(labels)} labels for {len(predictions)} predictions"
        )
    index = taxonomy.to_index()
    true, pred, conf, unknown = [], [], [], []
    for prediction, label in zip(predictions, labels, strict=True):
        try:
            true.append(index.position(taxonomy.resolve(str(label)).id))
        except KeyError:
            unknown.append(str(label))
            continue
        pred.append(index.position(prediction.category_id) if prediction.category_id in taxonomy else -1)
        conf.append(float(prediction.confidence))
    if not true:
        raise InvalidArgumentError(f"none of the {len(labels)} labels is a category of {taxonomy.name!r}")
    true_a, pred_a, conf_a = np.array(true), np.array(pred), np.array(conf)
    correct = true_a == pred_a
    metrics = {**category_metrics(pred_a, true_a, index), "exact": float(correct.mean()),
               "ece": expected_calibration_error(conf_a, correct)}
    accept = {}
    for target in target_precisions:
        t = threshold_for_precision(conf_a, correct, target)
        accept[target] = {"threshold": t.value, "precision": t.precision, "share": t.share}
    confused = _most_confused(pred_a, true_a, index.paths)
    report = EvaluationReport(
        metrics, accept, confused, unknown_labels=sorted(set(unknown)),
        per_category=per_category(pred_a, true_a, index.paths),
    )
    if plots_dir is not None:
        report.plots = _plots(conf_a, correct, confused, Path(plots_dir))
    return report


def per_category(pred: np.ndarray, true: np.ndarray, paths: Sequence[str]) -> list[dict]:
    """Support, precision, recall and F1 of each category met in ``true`` or ``pred``.

    Example:
        >>> rows = per_category(np.array([0, 0, 1]), np.array([0, 1, 1]), ["A", "B"])
        >>> [(r["path"], r["support"], r["precision"], r["recall"]) for r in rows]
        [('B', 2, 1.0, 0.5), ('A', 1, 0.5, 1.0)]
    """
    support, predicted = Counter(true.tolist()), Counter(p for p in pred.tolist() if p >= 0)
    correct = Counter(t for t, p in zip(true.tolist(), pred.tolist(), strict=True) if t == p)
    rows = []
    for position in sorted(set(support) | set(predicted), key=lambda c: (-support[c], paths[c])):
        hits = correct[position]
        precision = hits / predicted[position] if predicted[position] else 0.0
        recall = hits / support[position] if support[position] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        rows.append({"path": paths[position], "support": support[position],
                     "predicted": predicted[position], "correct": hits,
                     "precision": precision, "recall": recall, "f1": f1})
    return rows


def _most_confused(pred: np.ndarray, true: np.ndarray, paths: Sequence[str]) -> list[tuple[str, str, int]]:
    pairs = Counter((int(t), int(p)) for t, p in zip(true, pred, strict=True) if t != p)
    return [(paths[t], paths[p] if p >= 0 else "(not in the tree)", n) for (t, p), n in pairs.most_common(MOST_CONFUSED)]


def _plots(conf: np.ndarray, correct: np.ndarray, confused: list, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [reliability_diagram(conf, correct, folder / "reliability.png")]
    if confused:
        written.append(confusion_chart(confused, folder / "most_confused.png"))
    return written


def confusion_chart(confused: list[tuple[str, str, int]], path: str | Path) -> Path:
    """A horizontal bar per (true -> predicted) mistake, most frequent first, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{_short(t)}  ->  {_short(p)}" for t, p, _ in confused][::-1]
    counts = [n for _, _, n in confused][::-1]
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(labels) + 1.2))
    axes.barh(range(len(labels)), counts, color="#c0504d")
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("products")
    axes.set_title("Most confused categories (true -> predicted)")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _short(path: str, keep: int = 2) -> str:
    parts = path.split(" > ")
    return " > ".join(parts[-keep:]) if len(parts) > keep else path
