"""The one predictor contract and ``min_confidence`` through every predictor and the Categorizer."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal_cat.categorizer import Categorizer
from multimodal_cat.feeds import categorize_feed, read_output
from multimodal_cat.modeling.testing import tiny_model, tiny_processor
from multimodal_cat.predictors import DryRunPredictor, Predictor
from multimodal_cat.predictors.backoff import coarse_predictions, node_probabilities
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.confidence import DEFAULT_CONFIDENCE, logit, sigmoid
from tests.test_align_engine import BagOfWordsEncoder
from tests.test_align_zero_shot import FASHION

TITLES = ["Nike Men White T-Shirt", "Blue slim jeans", "Brown leather sandals", "Steel watch"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("ckpt")
    tiny_model().save_pretrained(folder)
    tiny_processor(folder / "tok").save_pretrained(folder)
    return str(folder)


@pytest.fixture
def zero_shot() -> ZeroShotCategorizer:
    return ZeroShotCategorizer(Taxonomy.from_paths(FASHION), BagOfWordsEncoder(), cache=False)


def test_every_predictor_keeps_the_contract(checkpoint: str, zero_shot) -> None:
    predictors = [
        DryRunPredictor(),
        zero_shot,
        ModelPredictor.from_pretrained(checkpoint, cache=None),
    ]
    products = [Product(title=t) for t in TITLES]
    for predictor in predictors:
        assert isinstance(predictor, Predictor)
        assert isinstance(predictor.taxonomy, Taxonomy)
        predictions = predictor.predict(products, top_k=2, min_confidence=None)
        assert len(predictions) == len(products)
        assert predictor.predict_proba(products).shape[0] == len(products)


def test_zero_shot_min_confidence_zero_answers_the_best_leaf(zero_shot, monkeypatch) -> None:
    """min_confidence replaces the default back-off; 0 keeps the best leaf, as leaf_min=0 does."""
    monkeypatch.setattr(zero_shot, "leaf_min", 0.0)
    monkeypatch.setattr(zero_shot, "feed_calibration", False)  # two calls: no feed history
    plain = zero_shot.predict(TITLES, top_k=3)
    backed = zero_shot.predict(TITLES, top_k=3, min_confidence=0.0)

    def key(p):
        return p.category_id, round(p.confidence, 4), [a.id for a in p.alternatives], p.tags, p.warnings

    assert [key(p) for p in backed] == [key(p) for p in plain]


def test_zero_shot_backs_off_to_the_deepest_sure_ancestor(zero_shot) -> None:
    zero_shot.feed_calibration = False  # the confidence model's own reading, call after call
    tree = zero_shot.taxonomy
    probs = zero_shot.predict_proba(TITLES)
    classes = zero_shot.classes_
    nodes = node_probabilities(tree, classes, probs)
    ids = [c.id for c in tree]
    backed_off = 0
    for threshold in (0.3, 0.6, 0.9, 1.0):
        for row, prediction in enumerate(zero_shot.predict(TITLES, min_confidence=threshold)):
            best = classes[int(np.argmax(probs[row]))]
            path = [c.id for c in tree.ancestors(best, include_self=True)]
            assert prediction.category_id in path
            assert prediction.category_path == tree[prediction.category_id].full_path
            reached = nodes[row, ids.index(prediction.category_id)]
            deeper = path[path.index(prediction.category_id) + 1 :]
            assert all(nodes[row, ids.index(d)] < threshold for d in deeper)
            if prediction.category_id != best:
                backed_off += 1
                # the confidence model's reading of the branch's summed probability
                w, b = DEFAULT_CONFIDENCE.weights[0], DEFAULT_CONFIDENCE.bias + DEFAULT_CONFIDENCE.prior_shift
                assert prediction.confidence == pytest.approx(sigmoid(w * logit(reached) + b), abs=1e-4)
            if reached >= threshold:
                assert not prediction.warnings
            else:  # not even the top level is sure enough
                assert tree[prediction.category_id].depth == 1
                assert "No category reaches confidence" in prediction.warnings[0]
            assert prediction.alternatives[0].id == prediction.category_id
            depth = tree[prediction.category_id].depth
            assert {tree[a.id].depth for a in prediction.alternatives} == {depth}
    assert backed_off > 0


def test_node_probabilities_sum_the_leaves_below() -> None:
    tree = Taxonomy.from_paths(["A > B", "A > C", "D"])
    probs = np.array([[0.5, 0.2, 0.3]])
    nodes = node_probabilities(tree, ["A > B", "A > C", "D"], probs)
    assert dict(zip([c.id for c in tree], nodes[0].round(6), strict=True)) == {
        "A": 0.7,
        "A > B": 0.5,
        "A > C": 0.2,
        "D": 0.3,
    }
    with pytest.raises(ValueError, match=r"min_confidence must be in \[0, 1\]"):
        coarse_predictions(tree, ["A > B", "A > C", "D"], probs, 1.5)


def test_categorizer_passes_min_confidence_to_its_predictor(checkpoint: str) -> None:
    predictor = ModelPredictor.from_pretrained(checkpoint, cache=None)
    categorizer = Categorizer(predictor)
    products = [{"title": t} for t in TITLES]
    for threshold in (None, 0.5, 1.0):
        got = categorizer.predict(products, min_confidence=threshold)
        want = predictor.predict([Product(title=t) for t in TITLES], min_confidence=threshold)
        assert [(p.category_id, p.warnings) for p in got] == [
            (p.category_id, p.warnings) for p in want
        ]
    top = categorizer.predict(products, min_confidence=1.0)
    assert {categorizer.taxonomy[p.category_id].depth for p in top} == {1}


def test_categorizer_zero_shot_min_confidence(zero_shot) -> None:
    products = [Product(title=t) for t in TITLES]
    leaves = [p.category_id for p in zero_shot.predict(products)]
    want = [p.category_id for p in zero_shot.predict(products, min_confidence=1.0)]
    assert want != leaves  # some rows back off
    got = Categorizer(zero_shot).predict([{"title": t} for t in TITLES], min_confidence=1.0)
    assert [p.category_id for p in got] == want


def test_feed_job_passes_min_confidence(zero_shot, tmp_path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TITLES)))
    categorize_feed(feed, zero_shot, tmp_path / "out.jsonl", min_confidence=1.0, progress=False)
    rows = list(read_output(tmp_path / "out.jsonl"))
    want = zero_shot.predict(
        [Product(id=str(i), title=t) for i, t in enumerate(TITLES)], min_confidence=1.0
    )
    assert [r["category_id"] for r in rows] == [p.category_id for p in want]
    assert any(zero_shot.taxonomy[r["category_id"]].depth == 1 for r in rows)


def test_a_checkpoint_without_an_image_tower_fails_a_photo_only_product(tmp_path) -> None:
    from PIL import Image

    tiny_model(vision=None).save_pretrained(tmp_path)
    tiny_processor(tmp_path / "tok").save_pretrained(tmp_path)
    predictor = ModelPredictor.from_pretrained(str(tmp_path), cache=None)
    photo = Image.new("RGB", (30, 30), "red")
    answers = predictor.predict([Product(title="", image=photo), Product(title="red boots", image=photo)])
    assert [a.status for a in answers] == ["error", "ok"]
    assert answers[0].error == "this checkpoint reads text only, and the product has none it can use"
    assert answers[1].inputs == "text" and answers[1].category_id
