"""Zero-shot with an aligned image-text pair (a tiny random CLIP built in the test)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import BertModel, CLIPConfig, CLIPModel

from multimodal_cat.modeling.testing import IMAGE_SIZE, tiny_text_config, tiny_tokenizer
from multimodal_cat.predictors.image_text import ImageTextEncoder
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from tests.test_align_zero_shot import FASHION


class _Processor:
    """Tokenizer + image processor with the ``text=`` / ``images=`` call of CLIP's processor."""

    def __init__(self, folder: Path) -> None:
        from transformers import ViTImageProcessor

        self.tokenizer = tiny_tokenizer(folder)
        self.images = ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})

    def __call__(self, text=None, images=None, **kwargs):
        if text is not None:
            return self.tokenizer(text, **kwargs)
        return self.images(images=images, return_tensors=kwargs.get("return_tensors"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> ImageTextEncoder:
    torch.manual_seed(0)
    processor = _Processor(tmp_path_factory.mktemp("tok"))
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={
            **small,
            "intermediate_size": 32,
            "vocab_size": len(processor.tokenizer),
            "max_position_embeddings": 32,
        },
        vision_config={
            **small,
            "intermediate_size": 32,
            "image_size": IMAGE_SIZE,
            "patch_size": 10,
        },
        projection_dim=8,
    )
    return ImageTextEncoder(CLIPModel(config), processor)


def _products() -> list[Product]:
    colours = ["red", "blue", "green"]
    with_images = [Product(title="", image=Image.new("RGB", (40, 40), c)) for c in colours]
    return [*with_images, Product(title="shirt")]


def test_image_scores_are_cosines_with_category_prompts(pair: ImageTextEncoder) -> None:
    tree = Taxonomy.from_paths(FASHION)
    zs = ZeroShotCategorizer(tree, None, cache=False, image_encoder=pair, image_weight=1.0)
    items = _products()
    scores = zs.image_scores(items)
    prompts = pair.encode_texts(["a photo of Tshirts, a type of Topwear"])
    images = pair.encode_images([items[0].image])
    column = zs.paths_.index("Apparel > Topwear > Tshirts")
    assert scores[0, column] == pytest.approx(float(images[0] @ prompts[0]), abs=1e-5)
    assert not scores[3].any()  # no image: no image term
    assert np.abs(scores[:3]).max() <= 1.0 + 1e-5


def test_images_decide_when_text_is_silent_and_text_only_rows_are_unchanged(
    pair: ImageTextEncoder,
) -> None:
    tree = Taxonomy.from_paths(FASHION)
    plain = ZeroShotCategorizer(tree, None, cache=False)
    with_images = ZeroShotCategorizer(tree, None, cache=False, image_encoder=pair, image_weight=5)
    items = _products()
    image_scores = with_images.image_scores(items)
    predictions = with_images.predict(items)
    for row in range(3):  # empty titles: the image term alone decides
        best = with_images.classes_[int(np.argmax(image_scores[row]))]
        assert predictions[row].category_id == best
    np.testing.assert_allclose(with_images.scores(items[3:]), plain.scores(items[3:]))
    assert predictions[3].category_path == "Apparel > Topwear > Shirts"


def test_a_photo_alone_fails_without_an_image_text_model_in_python_and_in_the_feed(tmp_path: Path) -> None:
    from multimodal_cat.categorizer import Categorizer
    from multimodal_cat.feeds.images import ImageLoader
    from multimodal_cat.feeds.job import categorize_feed
    from multimodal_cat.predictors.zero_shot import NO_TEXT

    tree = Taxonomy.from_paths(FASHION)
    plain = ZeroShotCategorizer(tree, None, cache=False)
    answers = Categorizer(plain).predict(_products())
    assert [a.status for a in answers] == ["error"] * 3 + ["ok"]  # no text: nothing to read
    assert answers[0].error == NO_TEXT and answers[0].category_id == "" and answers[3].category_id
    proba = Categorizer(plain).predict_proba(_products())
    assert np.isnan(proba[:3]).all() and proba[3].sum() == pytest.approx(1.0)  # no text: no guess
    Image.new("RGB", (40, 40), "red").save(tmp_path / "red.png")
    (tmp_path / "feed.csv").write_text("id,title,image\n1,,red.png\n2,blue shirt,red.png\n3,red shirt,gone.png\n")
    loader = ImageLoader(tmp_path)
    categorize_feed(tmp_path / "feed.csv", plain, tmp_path / "out.csv", images=loader, progress=False)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert [(r["status"], r["error"]) for r in rows] == [("error", NO_TEXT), ("ok", ""), ("ok", "")]
    assert not plain.reads_images  # so no photo was fetched: the missing one did not degrade row 3


def test_rejects_models_that_are_not_aligned_pairs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aligned image-text model"):
        ImageTextEncoder(BertModel(tiny_text_config()), _Processor(tmp_path))
    with pytest.raises(ValueError, match="image_weight"):
        ZeroShotCategorizer(Taxonomy.from_paths(FASHION), None, image_weight=-1.0)
