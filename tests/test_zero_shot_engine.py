"""Each mechanism of the zero-shot engine on small hand-made trees (no real weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.align.embeddings import TreeView
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot import (
    CategoryIndex,
    ScoreWeights,
    ZeroShotTagger,
    back_off,
    expected_calibration_error,
    fit_temperature,
    head_noun,
    head_phrase,
    product_text,
    softmax,
)
from multimodal_cat.zero_shot.adapt import smooth_over_neighbours
from tests.test_align_engine import BagOfWordsEncoder


class TableEncoder:
    """Hand-made vectors: each text's vector is looked up in a table (unknown texts: zero)."""

    key = "test-table"

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.dim = len(next(iter(table.values())))

    def encode(self, texts, batch_size: int = 64, normalize: bool = True, **kw: object):
        return np.array([self.table.get(t, [0.0] * self.dim) for t in texts], dtype=np.float32)


def test_branch_first_path_words_pick_the_branch() -> None:
    tree = Taxonomy.from_paths(
        ["Clothing > Men's Clothing > Tops", "Clothing > Women's Clothing > Tops"]
    )
    for encoder in (None, BagOfWordsEncoder()):
        zs = ZeroShotCategorizer(tree, encoder, cache=False, tags=False)
        paths = [p.category_path for p in zs.predict(["Solid Women's Top", "Cotton Men's Top"])]
        assert paths == [
            "Clothing > Women's Clothing > Tops",
            "Clothing > Men's Clothing > Tops",
        ]


def test_branch_first_ancestors_break_a_tie_between_same_named_leaves() -> None:
    # Both leaves are named "Accessories"; only their branches tell them apart.
    tree = Taxonomy.from_paths(["Phones > Accessories", "Cars > Accessories"])
    encoder = TableEncoder(
        {
            "Phones": [1, 0, 0],
            "Cars": [0, 1, 0],
            "Accessories": [0, 0, 1],
            "Phones > Accessories": [0.5, 0, 1],
            "Cars > Accessories": [0, 0.5, 1],
            "Zork": [0.9, 0.1, 0.3],  # a product near the Phones branch, no shared words
        }
    )
    zs = ZeroShotCategorizer(tree, encoder, cache=False, tags=False, weights={"head": 0.0})
    assert zs.predict(["Zork"])[0].category_path == "Phones > Accessories"
    zs_leaf_only = ZeroShotCategorizer(
        tree, encoder, cache=False, tags=False,
        weights={"head": 0.0, "path": 0.0, "ancestors": 0.0},
    )  # fmt: skip
    probs = zs_leaf_only.predict_proba(["Zork"])[0]
    assert np.isclose(probs[0], probs[1])  # by leaf name alone the two are tied


def test_hub_correction_pulls_back_a_category_near_everything() -> None:
    view = TreeView.from_taxonomy(Taxonomy.from_paths(["Hub", "Mugs", "Pens", "Lamps"]), None)
    # "Hub" sits near every product; each product is also close to its own category.
    matrix = np.array([[0.6, 0.6, 0.6], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    index = CategoryIndex(view, "leaves", matrix)
    vectors = np.eye(3, dtype=np.float32) * 0.55 + 0.45
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [product_text(t) for t in ("zz", "yy", "xx")]
    plain = index.scores(texts, vectors, ScoreWeights(overlap=0, phrase=0))
    corrected = index.scores(texts, vectors, ScoreWeights(overlap=0, phrase=0, hub=1.0, hub_k=3))
    assert [index.paths[j] for j in plain.argmax(1)] == ["Hub", "Hub", "Hub"]
    assert [index.paths[j] for j in corrected.argmax(1)] == ["Mugs", "Pens", "Lamps"]


def test_head_phrase_and_noun_name_the_product_not_its_accessory() -> None:
    assert head_phrase("Gaiam Yoga Mat 10 mm with Carrying Strap") == "Gaiam Yoga Mat 10 mm"
    assert head_noun("Gaiam Yoga Mat 10 mm with Carrying Strap") == "Yoga Mat"
    assert head_phrase("TRINK Tempered Glass for iPhone 6S") == "TRINK Tempered Glass"
    assert head_phrase("Mug") == "Mug"
    text = product_text(Product(title="LEGO Classic Bricks Set", brand="LEGO Classic"))
    assert text.lexical == "Bricks Set"


def test_accessory_does_not_beat_the_product(monkeypatch: pytest.MonkeyPatch) -> None:
    # the bag-of-words fake shares "strap" with the strap category; at MiniLM's scale (1) its
    # cosine is what the head phrase must outweigh (its own scale would be 1.27)
    monkeypatch.setattr("multimodal_cat.predictors.zero_shot.cosine_scale", lambda *args: 1.0)
    tree = Taxonomy.from_paths(
        ["Sports > Yoga > Yoga Mats", "Sports > Yoga > Yoga Mat Straps", "Home > Pots > Plant Pots",
         "Home > Trays > Drainage Trays"]
    )  # fmt: skip
    for encoder in (None, BagOfWordsEncoder()):
        zs = ZeroShotCategorizer(tree, encoder, cache=False, tags=False, leaf_min=0.0)
        paths = [
            p.category_path
            for p in zs.predict(
                ["Gaiam Yoga Mat with Carrying Strap", "Ceramic Plant Pot with Drainage Tray"]
            )
        ]
        assert paths == ["Sports > Yoga > Yoga Mats", "Home > Pots > Plant Pots"]


def test_back_off_answers_the_sure_branch_with_its_summed_probability() -> None:
    tree = Taxonomy.from_paths(["Toys > Dolls > Fashion Dolls", "Toys > Dolls > Baby Dolls",
                                "Tools > Drills"])  # fmt: skip
    zs = ZeroShotCategorizer(tree, None, cache=False, tags=False, leaf_min=0.6, branch_min=0.9,
                             feed_calibration=False)  # fmt: skip
    pred = zs.predict(["Set of 3 dolls"])[0]
    probs = zs.predict_proba(["Set of 3 dolls"])[0]
    assert pred.category_path == "Toys > Dolls"
    assert pred.category_id == tree.find("Toys > Dolls").id
    # the confidence model reads the branch's summed probability (the prior's shift, no feed's)
    from multimodal_cat.zero_shot.confidence import DEFAULT_CONFIDENCE, logit, sigmoid

    w, b = DEFAULT_CONFIDENCE.weights[0], DEFAULT_CONFIDENCE.bias + DEFAULT_CONFIDENCE.prior_shift
    assert pred.confidence == pytest.approx(sigmoid(w * logit(probs[:2].sum()) + b), abs=1e-4)
    assert pred.confidence > sigmoid(w * logit(max(probs[:2])) + b)
    assert len(pred.warnings) == 1 and "Toys > Dolls" in pred.warnings[0]
    assert pred.alternatives[0].path.startswith("Toys > Dolls > ")  # alternatives stay leaves
    sure = zs.predict(["Cordless drills"])[0]  # a sure leaf does not back off
    assert sure.category_path == "Tools > Drills" and not sure.warnings
    never = ZeroShotCategorizer(tree, None, cache=False, tags=False, leaf_min=0.0)
    assert never.predict(["Set of 3 dolls"])[0].category_path.count(" > ") == 2


def test_back_off_function_on_hand_made_probabilities() -> None:
    view = TreeView.from_taxonomy(
        Taxonomy.from_paths(["A > B > C", "A > B > D", "A > E", "F > G"]), None
    )
    index = CategoryIndex(view, "leaves", None)  # leaves C, D, E, G
    choice = back_off(np.array([0.4, 0.35, 0.15, 0.1]), index, leaf_min=0.5, branch_min=0.7)
    assert view.paths[choice.position] == "A > B" and choice.confidence == pytest.approx(0.75)
    probs = np.array([0.4, 0.2, 0.3, 0.1])
    choice = back_off(probs, index, leaf_min=0.5, branch_min=0.8, min_depth=1)
    assert view.paths[choice.position] == "A" and choice.confidence == pytest.approx(0.9)
    choice = back_off(probs, index, leaf_min=0.5, branch_min=0.8)  # roots are not answered
    assert not choice.backed_off and view.paths[choice.position] == "A > B > C"
    choice = back_off(np.array([0.4, 0.1, 0.1, 0.4]), index, leaf_min=0.5, branch_min=0.8)
    assert not choice.backed_off and view.paths[choice.position] == "A > B > C"


def test_zero_shot_tags_from_the_shopify_vocabularies() -> None:
    tagger = ZeroShotTagger(
        {
            "color": ["Red", "Gray", "Black"],
            "target_gender": ["Female", "Male", "Unisex"],
            "material": ["Leather", "Stainless steel"],
        }
    )
    tags = tagger.tags("Men's Grey Leather Belt", "Black buckle")
    assert {(t.attribute, t.value) for t in tags} == {
        ("color", "Gray"), ("target_gender", "Male"), ("material", "Leather")
    }  # fmt: skip
    assert all(0 < t.score <= 1 for t in tags)
    described = tagger.tags("Water bottle", "Double-wall stainless steel, black")
    assert {(t.attribute, t.value) for t in described} == {
        ("material", "Stainless steel"), ("color", "Black")
    }  # fmt: skip
    assert max(t.score for t in described) < min(t.score for t in tags)  # description < title
    assert [t.attribute for t in tagger.tags("Red Belt", attributes=["material"])] == []
    two = tagger.tags("Red and Black Mug")
    assert [t.score for t in two] == [pytest.approx(two[0].score)] * 2


def test_zero_shot_predictions_carry_tags() -> None:
    tree = Taxonomy.from_paths(["Apparel > Dresses", "Home > Mugs"])
    zs = ZeroShotCategorizer(tree, None, cache=False)  # tags from the shipped Shopify values
    pred = zs.predict(["Women's Red Cotton Dress"])[0]
    assert {(t.attribute, t.value) for t in pred.tags} >= {
        ("color", "Red"), ("target_gender", "Female"), ("material", "Cotton")
    }  # fmt: skip
    assert (
        ZeroShotCategorizer(tree, None, cache=False, tags=False).predict(["Red Dress"])[0].tags
        == []
    )


def test_temperature_fit_and_calibration_error() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 5))
    true_t = 0.5
    probs = softmax(scores, true_t)
    labels = np.array([rng.choice(5, p=p / p.sum()) for p in probs.astype(np.float64)])
    assert fit_temperature(scores, labels) == pytest.approx(true_t, rel=0.15)
    conf = probs.max(1)
    right = labels == probs.argmax(1)
    assert expected_calibration_error(conf, right) < 0.03
    assert expected_calibration_error(np.full(100, 0.99), np.zeros(100, bool)) > 0.9
    with pytest.raises(ValueError, match="temperature"):
        softmax(scores, 0.0)


def test_adapt_smooths_over_the_feeds_own_neighbours() -> None:
    vectors = np.array([[1, 0], [1, 0.05], [1, -0.05], [0.99, 0.1], [0, 1], [0.05, 1]], "f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    probs = np.array([[0.9, 0.1]] * 3 + [[0.4, 0.6]] + [[0.1, 0.9]] * 2, dtype=np.float32)
    out = smooth_over_neighbours(probs, vectors, k=3, alpha=0.5)
    assert out.argmax(1).tolist() == [0, 0, 0, 0, 1, 1]  # row 3 follows its family
    assert np.allclose(out.sum(1), 1.0)
    small = probs[:3]
    assert smooth_over_neighbours(small, vectors[:3], k=3) is small  # too few rows: unchanged
    with pytest.raises(ValueError, match="alpha"):
        smooth_over_neighbours(probs, vectors, alpha=1.0)


def test_shipped_matrix_is_used_only_when_the_encoder_weights_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from multimodal_cat.encoders import TextEncoder
    from multimodal_cat.zero_shot import store

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "shirt", "mug"]))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=7, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=20)  # fmt: skip
    encoder = TextEncoder(BertModel(config), BertTokenizer(str(vocab)), name="tiny")
    monkeypatch.setattr(store, "DATA_DIR", tmp_path / "shipped")
    tree = Taxonomy.from_paths(["Apparel > Shirts", "Home > Mugs"])
    weights = ScoreWeights()
    view = store.embed_tree(tree, encoder, cache=False)
    from multimodal_cat.zero_shot.search import category_matrix

    matrix = category_matrix(view, weights)
    store.save_shipped(tree, encoder, weights, matrix)
    loaded = store.load_shipped(tree, encoder, weights)
    assert loaded is not None and np.abs(loaded - matrix).max() < 0.02
    assert store.load_shipped(tree, encoder, ScoreWeights(path=0.1)) is None  # other weights
    assert store.load_shipped(Taxonomy.from_paths(["Home > Mugs"]), encoder, weights) is None
    with torch.no_grad():
        encoder.model.embeddings.word_embeddings.weight[5] += 1.0
    encoder._weight_digest = None
    assert store.load_shipped(tree, encoder, weights) is None  # weights changed: rebuild


def test_a_large_tree_is_encoded_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from multimodal_cat.encoders import EmbeddingCache
    from multimodal_cat.zero_shot.store import embed_tree

    paths = [f"Root {r} > Leaf {r} {i}" for r in range(3) for i in range(200)]
    view = embed_tree(Taxonomy.from_paths(paths), BagOfWordsEncoder(), EmbeddingCache(tmp_path))
    assert view.name_emb.shape == (603, BagOfWordsEncoder.dim)
    assert "1203/1203" in capsys.readouterr().err  # one bar over its paths and names
    embed_tree(Taxonomy.from_paths(["Home > Mugs"]), BagOfWordsEncoder(), EmbeddingCache(tmp_path))
    assert capsys.readouterr().err == ""  # a small tree encodes silently


@pytest.mark.slow
def test_shipped_shopify_matrix_matches_the_encoder() -> None:
    from multimodal_cat.align.embeddings import resolve_text_encoder
    from multimodal_cat.zero_shot import store
    from multimodal_cat.zero_shot.search import category_matrix

    tree, encoder = Taxonomy.load("shopify"), resolve_text_encoder("minilm")
    shipped = store.load_shipped(tree, encoder, ScoreWeights())
    assert shipped is not None, "rebuild with: python -m multimodal_cat.zero_shot.store shopify"
    fresh = category_matrix(store.embed_tree(tree, encoder), ScoreWeights())
    assert np.abs(shipped - fresh).max() < 0.02


def test_the_default_cache_is_opened_once_not_on_every_call(tmp_path, monkeypatch) -> None:
    """The service and the feed job call predict per batch: one cache, not one per call."""
    import multimodal_cat.encoders as encoders
    from tests.test_align_engine import BagOfWordsEncoder

    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path))
    opened = []
    real = encoders.EmbeddingCache

    def counting(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(encoders, "EmbeddingCache", counting)
    zs = ZeroShotCategorizer(Taxonomy.from_paths(["Toys > Dolls", "Tools > Drills"]), BagOfWordsEncoder(), tags=False)
    for title in ("fashion doll", "cordless drill", "baby doll"):
        zs.predict([title])
    assert len(opened) == 1


def test_an_encoder_with_narrow_cosines_is_put_on_minilm_s_scale() -> None:
    from multimodal_cat.zero_shot.scale import (
        REFERENCE_SPREAD,
        cosine_scale,
        cosine_spread,
        reference_names,
    )

    class Narrow(BagOfWordsEncoder):  # every vector near one direction: cosines crowd near 1
        key = "narrow bag of words"

        def encode(self, texts, **kwargs):
            vectors = np.asarray(super().encode(texts, **kwargs), dtype=np.float64)
            return 0.1 * vectors / np.linalg.norm(vectors, axis=1, keepdims=True) + 1.0

    narrow = Narrow()
    spread = cosine_spread(narrow.encode(reference_names()))
    assert spread < REFERENCE_SPREAD / 3
    assert cosine_scale(narrow) == pytest.approx(REFERENCE_SPREAD / spread)
    tree = Taxonomy.from_paths(["Apparel > Shirts", "Apparel > Jeans", "Footwear > Shoes"])
    zs = ZeroShotCategorizer(tree, narrow, cache=False, tags=False)
    zs.predict(["blue jeans"])
    assert zs.index_.cosine_scale == pytest.approx(REFERENCE_SPREAD / spread)
    assert cosine_scale(None) == 1.0
