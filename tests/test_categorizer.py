"""The Categorizer over a tiny trained-model checkpoint: inputs, cache, mapping, predict_proba."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multimodal_cat.categorizer import Categorizer, to_products
from multimodal_cat.encoders import EmbeddingCache
from multimodal_cat.predictors.build import build_predictor
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product


@pytest.fixture
def checkpoint(tiny_checkpoint: Path) -> str:
    return str(tiny_checkpoint)


@pytest.fixture()
def categorizer(checkpoint: str, tmp_path) -> Categorizer:
    predictor = ModelPredictor.from_pretrained(checkpoint, cache=EmbeddingCache(tmp_path))
    return Categorizer(predictor)


def test_predictions_are_paths_of_the_tree(categorizer: Categorizer) -> None:
    products = [
        {"title": "red leather boots"},
        Product(title="blue cotton shirt", image=Image.new("RGB", (40, 40), "blue")),
        {"title": "", "image": Image.new("RGB", (30, 30), "red")},
    ]
    predictions = categorizer.predict(products, top_k=3)
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction.category_id in categorizer.taxonomy
        assert categorizer.taxonomy[prediction.category_id].full_path == prediction.category_path
        assert len(prediction.alternatives) == 3
        assert {t.attribute for t in prediction.tags} >= {"color"}


def test_cached_second_pass_gives_the_same_answer(categorizer: Categorizer, tmp_path) -> None:
    products = [{"title": "red boots", "image": Image.new("RGB", (32, 32), "red")}]
    first = categorizer.predict(products)[0]
    cache = categorizer.predictor.cache
    assert cache.count() == 2  # one text and one image vector
    second = categorizer.predict(products)[0]
    assert second.category_id == first.category_id
    assert second.confidence == pytest.approx(first.confidence, abs=1e-6)


def test_predict_proba_rows_sum_to_one(categorizer: Categorizer) -> None:
    proba = categorizer.predict_proba([{"title": "red shirt"}, {"title": "kitchen"}])
    assert proba.shape == (2, len(categorizer.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_products_from_a_dataframe_and_a_bad_record() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"title": ["a", "b"], "brand": ["x", float("nan")]})
    products = to_products(frame)
    assert [p.title for p in products] == ["a", "b"] and products[1].brand == ""
    with pytest.raises(TypeError, match="item 0 is of type int: expected a title"):
        to_products([42])


def test_unreadable_image_path_becomes_a_warning(categorizer: Categorizer, tmp_path) -> None:
    missing = tmp_path / "nope.jpg"
    prediction = categorizer.predict({"title": "red boots", "image": str(missing)})[0]
    assert prediction.warnings and "nope.jpg" in " ".join(prediction.warnings)


def test_build_predictor_needs_a_model_or_a_tree() -> None:
    with pytest.raises(ValueError, match="give a trained model"):
        build_predictor()


def test_tree_without_published_rules_gets_an_inferred_mapping() -> None:
    from multimodal_cat.mapping import CategoryMapper
    from multimodal_cat.taxonomy import Taxonomy

    source = Taxonomy.from_paths(["Clothing > Shoes", "Clothing > Shirts"], name="shop")
    target = Taxonomy.from_paths(["Apparel", "Apparel > Shoes", "Apparel > Tops"], name="market")
    mapper = CategoryMapper.to_targets(source, [target], text_encoder=None)
    mapped = mapper.map_id("Clothing > Shoes")["market"]
    assert mapped.provenance in {"inferred", "inherited"}
    assert mapped.target_ids == ("Apparel > Shoes",)


def test_predictor_thread_setting_is_scoped_and_checked(checkpoint: str) -> None:
    import torch

    with pytest.raises(ValueError, match="num_threads"):
        ModelPredictor.from_pretrained(checkpoint, cache=None, num_threads=0)
    predictor = ModelPredictor.from_pretrained(checkpoint, cache=None, num_threads=1)
    before = torch.get_num_threads()
    seen: list[int] = []
    original = predictor.model.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    predictor.model.forward = spy
    predictor.predict([Product(title="red boots")])
    assert seen == [1]
    assert torch.get_num_threads() == before


def test_image_encoder_is_for_zero_shot_only() -> None:
    with pytest.raises(ValueError, match="image_encoder is for zero-shot"):
        build_predictor(model="ckpt", image_encoder="openai/clip-vit-base-patch32")


def test_adapt_is_for_zero_shot_only_and_reaches_it() -> None:
    from multimodal_cat.taxonomy import Taxonomy

    with pytest.raises(ValueError, match=r"adapt is for zero-shot.*give --model or --adapt"):
        build_predictor(model="ckpt", adapt=True)
    tree = Taxonomy.from_paths(["Shoes", "Shirts"])
    assert build_predictor(taxonomy=tree, adapt=True).adapt is True
    assert build_predictor(taxonomy=tree).adapt is False
