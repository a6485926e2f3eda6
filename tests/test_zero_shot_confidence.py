"""Zero-shot confidence: the transferable confidence model, calibration from reviews, storage,
routing at the reviewed thresholds, and ``multimodal-cat calibrate`` (too few reviews)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.calibration import (
    MIN_REVIEWS,
    fit_review_calibration,
    recalibrate,
    reviewed_threshold,
    wilson_interval,
)
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.review.routing import StoredThresholdError, stored_router, stored_thresholds
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.confidence import confidence_features
from multimodal_cat.zero_shot.reviewed import calibrate_from_reviews, load_calibration
from tests.test_align_engine import BagOfWordsEncoder

TREE = Taxonomy.from_paths(
    ["Toys > Dolls", "Toys > Puzzles", "Tools > Drills", "Tools > Saws", "Food > Pasta"],
    name="small",
)
TITLES = {
    "Toys > Dolls": "fashion doll with dress",
    "Toys > Puzzles": "jigsaw puzzles 1000 pieces",
    "Tools > Drills": "cordless drills 18v",
    "Tools > Saws": "circular saws 7 inch",
    "Food > Pasta": "spaghetti pasta 500 g",
}


@pytest.fixture()
def calibration_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "calibration"
    monkeypatch.setenv("MULTIMODAL_CAT_CALIBRATION", str(folder))
    return folder


def _reviews(n: int, wrong_every: int = 0) -> tuple[list[str], list[str]]:
    """``n`` reviewed titles; every ``wrong_every``-th is reviewed into another category."""
    paths = list(TITLES)
    titles, labels = [], []
    for i in range(n):
        path = paths[i % len(paths)]
        titles.append(f"{TITLES[path]} model {i}")
        wrong = wrong_every and i % wrong_every == 0
        labels.append(paths[(i + 1) % len(paths)] if wrong else path)
    return titles, labels


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(95, 100)
    assert (round(low, 3), round(high, 3)) == (0.888, 0.978)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_too_few_reviews_claims_no_precision() -> None:
    conf = np.linspace(0.5, 0.99, MIN_REVIEWS - 1)
    calib = fit_review_calibration(conf, np.ones_like(conf, dtype=bool))
    assert calib.temperature == 1.0 and "too few reviews" in calib.note
    for target in ("0.9", "0.95", "0.98"):
        threshold = calib.thresholds["any"][target]
        assert threshold.value is None and threshold.note.startswith("too few reviews")
        assert "no threshold (too few reviews" in threshold.describe()


def test_a_threshold_rests_on_enough_reviews_and_reports_its_interval() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 600)
    right = rng.uniform(size=600) < conf
    t = reviewed_threshold(conf, right, 0.9)
    above = conf >= t.value
    assert t.reviews == int(above.sum()) >= 30
    assert t.precision == pytest.approx(right[above].mean())
    assert t.precision >= 0.9 and t.interval[0] < t.precision < t.interval[1]
    assert f"on {t.reviews} reviews, 95% interval" in t.describe()
    assert "more reviews needed to rule out a precision as low as" in t.describe()  # low < 0.9
    # a high target that only a handful of answers reach: no threshold, and it says why
    few = reviewed_threshold(conf, conf > 0.995, 0.999)
    assert few.value is None and "not reached: no confidence has 30" in few.note


def test_recalibration_fits_an_over_confident_tree() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.6, 0.99, 2000)
    right = rng.uniform(size=2000) < conf - 0.25  # right 25 points less often than claimed
    calib = fit_review_calibration(conf, right)
    fixed = recalibrate(conf, calib.temperature, calib.bias)
    assert abs(fixed.mean() - right.mean()) < 0.03 < abs(conf.mean() - right.mean())


def test_confidence_features_are_tree_agnostic_numbers() -> None:
    scores = np.array([[1.0, 0.2, 0.1, 0.0], [0.5, 0.49, 0.1, 0.0]])
    probs = np.exp(scores / 0.1) / np.exp(scores / 0.1).sum(1, keepdims=True)
    feats = confidence_features(scores, probs, probs.max(1), np.array([0, 0, 1, 1]), np.array([0, 1]))
    assert feats.shape == (2, 6)
    assert feats[0, 1] == pytest.approx(0.8) and feats[1, 1] == pytest.approx(0.01)  # margins
    assert feats[0, 5] == 1.0 and feats[1, 5] == 0.0  # the embedding alone agrees / not
    assert feats[0, 4] == pytest.approx(np.log(4))


def test_calibrate_from_reviews_is_stored_and_routes_categorize(calibration_dir: Path) -> None:
    zs = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False)
    titles, labels = _reviews(200, wrong_every=10)
    fit = calibrate_from_reviews(zs, titles, labels, targets=(0.8,))
    assert fit.path is not None and fit.path.parent == calibration_dir
    assert fit.calibration.reviews == 200
    stored = fit.calibration.threshold(0.8)
    assert stored.value is not None and stored.reviews >= 30
    # a new predictor on the same tree and encoder finds it; another tree does not
    fresh = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False)
    assert stored_thresholds(fresh) == {"0.8": stored.value}
    router = stored_router(fresh, 0.8)
    assert router.threshold == stored.value and "200 reviewed answers" in router.source
    other = ZeroShotCategorizer(Taxonomy.from_paths(["Toys > Dolls"]), BagOfWordsEncoder(), cache=False)
    with pytest.raises(StoredThresholdError, match="no stored threshold for precision 0.8"):
        stored_router(other, 0.8)
    # Categorizer.predict routes at it (a zero-shot tree has no other stored threshold)
    from multimodal_cat.categorizer import Categorizer

    routed = Categorizer(fresh).predict(titles[:20], target_precision=0.8)
    assert all((p.confidence < stored.value) == p.needs_review for p in routed)
    # the stored temperature refines the confidences the predictor gives
    raw = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False, reviewed=False)
    before = raw.predict(titles[:5])
    after = fresh.predict(titles[:5])
    c = load_calibration(TREE, BagOfWordsEncoder.key)
    expected = recalibrate(np.array([p.confidence for p in before]), c.temperature, c.bias)
    assert [p.confidence for p in after] == pytest.approx(expected, abs=1e-3)


def test_cli_calibrate_says_too_few_reviews(
    tmp_path: Path, tiny_short_names: None, calibration_dir: Path
) -> None:
    tree = tmp_path / "tree.csv"
    nodes = list(dict.fromkeys(n for p in TITLES for n in (p.split(" > ")[0], p)))
    tree.write_text("id,path\n" + "".join(f"{i},{p}\n" for i, p in enumerate(nodes)), encoding="utf-8")
    reviews = tmp_path / "reviewed.csv"
    titles, labels = _reviews(12)
    rows = [f'"{t}","{lab}"' for t, lab in zip(titles, labels, strict=True)]
    reviews.write_text("title,category\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "multimodal_cat", "calibrate", str(reviews), "--taxonomy", str(tree),
         "--target-precision", "0.95"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "12 reviewed answers" in result.stderr
    assert "precision 95%: no threshold (too few reviews: 12 < 50)" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "multimodal_cat", "calibrate", str(reviews), "--taxonomy", str(tree),
         "--label-column", "nope"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 2 and "expected a category column 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    both = subprocess.run(
        [sys.executable, "-m", "multimodal_cat", "calibrate", str(reviews), "--model", str(tmp_path),
         "--text-encoder", "multilingual-e5-small"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert both.returncode == 2 and "a trained model has its own text tower" in both.stderr


def test_feed_calibration_brings_the_mean_confidence_to_the_feeds_estimated_accuracy() -> None:
    from multimodal_cat.zero_shot.confidence import DEFAULT_CONFIDENCE, FEED_PRIOR, shifted

    titles, _ = _reviews(20 * FEED_PRIOR)
    plain = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False, feed_calibration=False)
    prior = np.array([p.confidence for p in plain.predict(titles)])  # the prior's shift only
    before = shifted(prior, -DEFAULT_CONFIDENCE.prior_shift)  # the model's own reading
    zs = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False)
    first = zs.predict(titles[:1])  # one product: the cautious prior, barely moved
    expected = shifted(before[:1], DEFAULT_CONFIDENCE.shift_for(before[:1]))
    assert first[0].confidence == pytest.approx(expected[0], abs=1e-3)
    assert abs(zs.last_shift_ - DEFAULT_CONFIDENCE.prior_shift) < 0.25
    after = np.array([p.confidence for p in zs.predict(titles[1:])])
    target = DEFAULT_CONFIDENCE.estimated_accuracy(before)
    assert abs(after.mean() - target) < 0.05  # the feed's own estimate now dominates
    order = np.argsort(before[1:], kind="stable")  # the order is kept (ties aside)
    assert np.all(np.diff(after[order]) >= -1e-3)


def test_calibrate_reads_a_corrections_file(tmp_path: Path) -> None:
    import argparse

    from multimodal_cat.cli.calibrate import _read_reviews
    from multimodal_cat.review.corrections import Correction, write_corrections

    path = tmp_path / "corrections.jsonl"
    write_corrections(
        [
            Correction("p1", "accepted", "t-1", "Toys > Dolls", title="fashion doll"),
            Correction("p2", "changed", "t-2", "Toys > Puzzles", title="jigsaw", description="1000 pieces"),
            Correction("p3", "skipped"),
            Correction("p4", "accepted", "t-1"),  # no product text: cannot be scored again
        ],
        path,
    )
    args = argparse.Namespace(reviews=str(path), label_column="category", column=None)
    products, labels = _read_reviews(args)
    assert [p.title for p in products] == ["fashion doll", "jigsaw"]
    assert products[1].description == "1000 pieces" and labels == ["t-1", "t-2"]


def test_calibrate_reads_a_label_studio_export(tmp_path: Path) -> None:
    import argparse
    import json

    from multimodal_cat.cli.calibrate import _read_reviews

    tree = tmp_path / "tree.csv"
    nodes = list(dict.fromkeys(n for p in TITLES for n in (p.split(" > ")[0], p)))
    tree.write_text("id,path\n" + "".join(f"n{i},{p}\n" for i, p in enumerate(nodes)), encoding="utf-8")
    export = [
        {"id": 1, "data": {"id": "p1", "suggested_id": "n1", "title": "fashion doll"},
         "annotations": [{"id": 1, "was_cancelled": False, "updated_at": "2026-12-01T10:00:00Z", "result": [
             {"from_name": "category", "to_name": "title", "type": "taxonomy",
              "value": {"taxonomy": [["Toys", "Puzzles"]]}}]}]},
    ]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    args = argparse.Namespace(reviews=str(path), label_column="category", column=None, taxonomy=str(tree))
    products, labels = _read_reviews(args)
    assert [p.title for p in products] == ["fashion doll"]
    assert labels == ["n2"]  # the reviewer changed Dolls (n1) to Puzzles


def test_calibrate_never_reads_the_label_as_the_sellers_category(tmp_path: Path) -> None:
    import argparse

    from multimodal_cat.cli.calibrate import _read_reviews

    path = tmp_path / "reviewed.csv"
    path.write_text("title,category\nfashion doll,Toys > Dolls\n", encoding="utf-8")
    args = argparse.Namespace(reviews=str(path), label_column="category", column=None)
    products, labels = _read_reviews(args)
    assert labels == ["Toys > Dolls"] and products[0].seller_category == ""


def test_holdout_threshold_never_reads_the_label_as_the_sellers_category(tmp_path: Path, fake_predictor) -> None:
    import argparse

    from multimodal_cat.cli.review import _holdout_threshold

    path = tmp_path / "holdout.csv"
    path.write_text("title,category\nyoga pants,aa-1-1\n", encoding="utf-8")
    seen = []
    predictor = fake_predictor(category=lambda p: seen.append(p.seller_category) or fake_predictor.ACTIVEWEAR)
    args = argparse.Namespace(holdout=str(path), holdout_label_column="category", column=None,
                              target_precision=0.9)  # fmt: skip
    _holdout_threshold(args, predictor)
    assert seen == [""]


def test_feed_calibration_reads_only_the_calls_own_products() -> None:
    """A batch answers the same whatever was scored before it (resume, Ray workers, service)."""
    titles, _ = _reviews(200)
    zs = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False)
    first = [p.confidence for p in zs.predict(titles[:64])]
    zs.predict(titles[64:])  # other products in between
    again = [p.confidence for p in zs.predict(titles[:64])]
    fresh = ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False)
    assert again == first == [p.confidence for p in fresh.predict(titles[:64])]
