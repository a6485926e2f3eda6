"""``categorize --review-below / --target-precision [--holdout]``: rows marked needs_review."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.feeds import read_output
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks", "Tools > Drills"], name="tiny")
CONFIDENCE = {"doll": 0.95, "blocks": 0.6, "drill": 0.85, "mystery": 0.3}
GUESS = {"doll": "Toys > Dolls", "blocks": "Toys > Dolls", "drill": "Tools > Drills", "mystery": "Tools > Drills"}


class _Predictor:
    fingerprint = "fixed"

    def __init__(self, thresholds=None):
        self.taxonomy = TREE
        self.model = SimpleNamespace(config=SimpleNamespace(confidence_thresholds=thresholds or {}))

    def predict(self, products, *, top_k=5, min_confidence=None):
        out = []
        for p in products:
            word = p.title.split()[-1]
            path, conf = GUESS[word], CONFIDENCE[word]
            out.append(Prediction(path, path, conf, alternatives=[CategoryScore(path, path, conf)]))
        return out


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("id,title,seller_category\n1,a doll,\n2,wooden blocks,\n3,cordless drill,Toys\n4,a mystery,\n")
    return path


def _run(monkeypatch, tmp_path, feed, *flags, thresholds=None):
    import multimodal_cat.predictors.build as build

    monkeypatch.setattr(build, "build_predictor", lambda **_: _Predictor(thresholds))
    out, tree = tmp_path / "out.csv", TREE.save(tmp_path / "tiny.csv")  # the tree is checked first
    code = main(["categorize", str(feed), "--taxonomy", str(tree), "-o", str(out), "--no-progress", *flags])
    return code, {r["id"]: (r["needs_review"], r["review_reason"]) for r in read_output(out)} if code == 0 else {}


def test_review_below_marks_low_confidence_and_seller_disagreement(monkeypatch, tmp_path, feed, capsys):
    code, rows = _run(monkeypatch, tmp_path, feed, "--review-below", "0.9")
    assert code == 0
    assert rows["1"] == ("False", "")
    assert rows["2"] == ("True", "low confidence (0.60 < 0.90)")
    assert rows["3"] == ("True", "low confidence (0.85 < 0.90); seller category 'Toys' disagrees")
    assert "3 of 4 categorized rows (75%) need review" in capsys.readouterr().err


def test_target_precision_uses_the_checkpoint_threshold(monkeypatch, tmp_path, feed, capsys):
    code, rows = _run(monkeypatch, tmp_path, feed, "--target-precision", "0.98", thresholds={"0.98": 0.8})
    assert code == 0 and rows["2"][0] == "True" and rows["4"][0] == "True" and rows["1"][0] == "False"
    assert "98% precision on the checkpoint's held-out rows" in capsys.readouterr().err
    code, _ = _run(monkeypatch, tmp_path, feed, "--target-precision", "0.98")
    assert code == 2 and "give --holdout" in capsys.readouterr().err


def test_target_precision_on_a_labelled_holdout(monkeypatch, tmp_path, feed, capsys):
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("title,category\na doll,Toys > Dolls\nwooden blocks,Toys > Blocks\ncordless drill,Tools > Drills\n")
    code, rows = _run(monkeypatch, tmp_path, feed, "--target-precision", "0.99", "--holdout", str(holdout))
    assert code == 0
    # right at 0.95 and 0.85, wrong at 0.6: the threshold is 0.85
    assert rows["1"][0] == "False" and rows["2"][0] == "True" and rows["4"][0] == "True"
    assert "measured 1.000, 67% of its rows accepted" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("title,label\na doll,Toys\n")
    code, _ = _run(monkeypatch, tmp_path, feed, "--target-precision", "0.9", "--holdout", str(bad))
    assert code == 2 and "expected a category column 'category'" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--review-below", "1.5"], ["--target-precision", "-0.1"],
                                   ["--target-precision", "x"]])
def test_thresholds_outside_0_1_are_refused(monkeypatch, tmp_path, feed, capsys, flags):
    with pytest.raises(SystemExit) as exit_info:
        _run(monkeypatch, tmp_path, feed, *flags)
    assert exit_info.value.code == 2 and "expected a probability in [0, 1]" in capsys.readouterr().err
