"""Categorizer.evaluate / evaluate_predictions: figures and plots on a hand-made tree."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal_cat.categorizer import Categorizer
from multimodal_cat.evaluation import evaluate_predictions
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks", "Tools > Drills"], name="tiny")


def _pred(path: str, conf: float) -> Prediction:
    return Prediction(path, path, conf, alternatives=[CategoryScore(path, path, conf)])


def test_figures_per_level_calibration_and_auto_accept(tmp_path):
    preds = [_pred("Toys > Dolls", 0.95), _pred("Toys > Dolls", 0.9), _pred("Tools > Drills", 0.6),
             _pred("Toys > Blocks", 0.55)]
    labels = ["Toys > Dolls", "Toys > Blocks", "Tools > Drills", "Tools > Drills"]
    report = evaluate_predictions(preds, labels, TREE, plots_dir=tmp_path)
    assert report.metrics["exact"] == 0.5 and report.metrics["level1_accuracy"] == 0.75
    # bins [0.9, 1]: 0.95 right, 0.9 wrong; [0.5, 0.6): 0.55 wrong; [0.6, 0.7): 0.6 right
    assert report.metrics["ece"] == pytest.approx((2 * 0.425 + 0.55 + 0.4) / 4)
    assert report.auto_accept[0.95] == {"threshold": 0.95, "precision": 1.0, "share": 0.25}
    assert report.confused[0] in (("Toys > Blocks", "Toys > Dolls", 1), ("Tools > Drills", "Toys > Blocks", 1))
    assert sorted(p.name for p in report.plots) == ["most_confused.png", "reliability.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in report.plots)


def test_unknown_labels_are_listed_not_scored():
    report = evaluate_predictions([_pred("Toys > Dolls", 0.9)] * 2, ["Toys > Dolls", "Space > Rockets"], TREE)
    assert report.unknown_labels == ["Space > Rockets"] and report.metrics["exact"] == 1.0
    with pytest.raises(ValueError, match="one label per prediction"):
        evaluate_predictions([_pred("Toys > Dolls", 0.9)], [], TREE)
    with pytest.raises(ValueError, match="none of the 1 labels"):
        evaluate_predictions([_pred("Toys > Dolls", 0.9)], ["nope"], TREE)


class _Fixed:
    taxonomy = TREE

    def predict(self, products, *, top_k=5, min_confidence=None):
        return [_pred("Toys > Dolls" if "doll" in p.title else "Tools > Drills", 0.8) for p in products]

    def predict_proba(self, products):
        return np.zeros((len(products), 3))


def test_categorizer_evaluate_predicts_then_scores():
    cat = Categorizer(_Fixed())
    report = cat.evaluate([{"title": "a doll"}, {"title": "a drill"}], ["Toys > Dolls", "Toys > Blocks"])
    assert report.metrics["exact"] == 0.5
