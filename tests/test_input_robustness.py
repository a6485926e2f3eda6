"""Photos of any shape, checkpoints that work from the image alone, tags gated off the image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image

from multimodal_cat.framing import border_colour, fit_image
from multimodal_cat.modeling import MultimodalCatModel
from multimodal_cat.modeling.testing import tiny_config, tiny_processor
from multimodal_cat.predictions import inputs_used
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product
from multimodal_cat.training import embedding_dataset
from multimodal_cat.training.sampling import add_input_views
from multimodal_cat.training.tag_gate import group_accuracy, without_images


def test_pad_keeps_the_whole_photo_on_its_own_background() -> None:
    tall = Image.new("RGB", (40, 80), (255, 255, 255))
    tall.paste((200, 0, 0), (10, 0, 30, 80))  # a red product touching the top and bottom
    framed = fit_image(tall, "pad")
    assert framed.size == (80, 80)
    assert framed.getpixel((0, 0)) == (255, 255, 255)  # the padding is the photo's white
    assert framed.getpixel((40, 0)) == (200, 0, 0) and framed.getpixel((40, 79)) == (200, 0, 0)
    assert border_colour(Image.new("RGB", (3, 3), (9, 8, 7))) == (9, 8, 7)
    assert fit_image(tall, "crop") is tall
    with pytest.raises(ValueError, match="one of pad, crop; got 'stretch'"):
        fit_image(tall, "stretch")


def test_processor_frames_photos_the_same_in_training_and_inference(tmp_path: Path) -> None:
    processor = tiny_processor(str(tmp_path))
    assert processor.image_fit == "pad"
    wide = Image.new("RGB", (90, 30), (255, 255, 255))
    wide.paste((0, 0, 255), (30, 0, 60, 30))
    padded = processor.pixel_values([wide])
    assert torch.equal(padded, processor.pixel_values([fit_image(wide)]))
    processor.save_pretrained(tmp_path / "saved")
    assert type(processor).from_pretrained(tmp_path / "saved").image_fit == "pad"
    cropped = type(processor)(processor.image_processor, processor.tokenizer, image_fit="crop")
    assert not torch.equal(padded, cropped.pixel_values([wide]))  # the processor alone squashes


def test_input_views_copy_imaged_rows_without_or_with_weak_text() -> None:
    rows = {
        "title": ["Puma Men Black Shoes", "Steel pan", "Red shirt"],
        "description": ["soft", "", "cotton"],
        "brand": ["", "", "Acme"],
        "seller_category": ["Shoes", "", ""],
        "image": ["a.jpg", "", "c.jpg"],
        "labels": [0, 1, 2],
    }
    views = add_input_views(Dataset.from_dict(rows), image_only=2, weak_text_views=1)
    assert list(views["labels"]) == [0, 1, 2, 0, 2, 0, 2, 0, 2]
    assert list(views["title"])[3:] == ["", "", "", "", "Puma", "Acme"]
    assert set(views["description"][3:]) == {""} and set(views["seller_category"][3:]) == {""}
    assert list(views["image"])[3:] == ["a.jpg", "c.jpg"] * 3
    with pytest.raises(ValueError, match="image_only must be a whole number >= 0; got -1"):
        add_input_views(Dataset.from_dict(rows), image_only=-1)


def test_text_only_tag_groups_ignore_the_image_only_where_there_is_text() -> None:
    config = tiny_config(vision="vit", text="bert")
    model = MultimodalCatModel(config).eval()
    dim_image = model.fusion.projections["image"].norm.normalized_shape[0]
    dim_text = model.fusion.projections["text"].norm.normalized_shape[0]
    inputs = {
        "image_embeds": torch.randn(3, dim_image),
        "text_embeds": torch.randn(3, dim_text),
        "image_mask": torch.tensor([True, True, False]),
        "text_mask": torch.tensor([True, False, True]),
    }
    with torch.no_grad():
        fused = model(**inputs).tag_logits
        text_only = model(**{**inputs, "image_mask": torch.zeros(3, dtype=torch.bool)}).tag_logits
        model.config.text_only_tag_groups = ["color"]
        gated = model(**inputs).tag_logits
    color, material = model.tag_head.slices
    torch.testing.assert_close(gated[0, color], text_only[0, color])  # text + image: text only
    torch.testing.assert_close(gated[0, material], fused[0, material])  # other tags keep it
    torch.testing.assert_close(gated[1], fused[1])  # a photo alone still tags from the photo
    assert not torch.allclose(fused[0, color], text_only[0, color])
    with pytest.raises(ValueError, match="names tags the model does not have: \\['size'\\]"):
        type(config)(**{**config.to_dict(), "text_only_tag_groups": ["size"]})


def test_group_accuracy_and_text_only_copies() -> None:
    from multimodal_cat.modeling.labels import TagGroup

    multi = TagGroup("material", ("cotton", "leather"), multi_valued=True)
    logits = np.array([[1.0, -1.0], [1.0, 1.0]])
    labels = np.array([[1, 0], [1, -100]])
    assert group_accuracy(logits, labels, multi, slice(0, 2)) == 1.0
    assert np.isnan(group_accuracy(logits, np.full((2, 2), -100), multi, slice(0, 2)))
    cached = embedding_dataset([0, 1], image_embeds=np.ones((2, 4)), image_mask=[True, True])
    assert without_images(cached).columns["image_mask"].sum() == 0
    assert cached.columns["image_mask"].sum() == 2  # the original is left alone


def test_predictions_say_which_inputs_they_used(tmp_path: Path) -> None:
    from multimodal_cat.modeling.testing import tiny_model

    predictor = ModelPredictor(tiny_model(), tiny_processor(str(tmp_path)))
    image = Image.new("RGB", (30, 45), (10, 200, 10))
    products = [Product(title="red shoe", image=image), Product(title="pan"), Product(image=image)]
    assert [p.inputs for p in predictor.predict(products)] == ["text+image", "text", "image"]
    assert inputs_used([False], [False]) == [""]


def test_train_measures_each_tag_with_and_without_the_image(
    tmp_path: Path, tiny_encoders: tuple[str, str], capsys
) -> None:
    import json

    import pandas as pd

    from multimodal_cat.cli.main import main
    from tests.test_training_trainer import _feed

    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)
    flags = ["--feed", str(feed), "--eval-feed", str(feed), "--tag-column", "colour"]
    flags += ["--text-encoder", text, "--vision-encoder", vision, "--freeze-encoders"]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--max_steps", "2"]
    flags += ["--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    flags += ["--embedding-cache", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "m")]
    assert main(["train", *flags]) == 0
    metrics = json.loads((tmp_path / "m" / "all_results.json").read_text())
    with_image = metrics["tag_colour_accuracy_with_image"]
    text_only = metrics["tag_colour_accuracy_text_only"]
    gated = MultimodalCatModel.from_pretrained(tmp_path / "m").config.text_only_tag_groups
    assert gated == ([] if with_image > text_only else ["colour"])
    assert metrics["text_only_tags"] == ",".join(gated)
    assert main(["train", *flags, "--no-gate-tag-images"]) == 0
    metrics = json.loads((tmp_path / "m" / "all_results.json").read_text())
    assert "text_only_tags" not in metrics
    assert MultimodalCatModel.from_pretrained(tmp_path / "m").config.text_only_tag_groups == []


def test_products_whose_text_and_image_disagree_go_to_review(tmp_path: Path) -> None:
    from multimodal_cat.modeling.testing import tiny_model
    from multimodal_cat.predictions import CategoryScore, Prediction
    from multimodal_cat.review.routing import review_reasons
    from multimodal_cat.taxonomy import Taxonomy

    predictor = ModelPredictor(tiny_model(), tiny_processor(str(tmp_path)))
    image = Image.new("RGB", (30, 30), (10, 200, 10))
    both, text_only = predictor.predict([Product(title="red shoe", image=image), Product(title="pan")])
    assert set(both.by_input) == {"text", "image"} and text_only.by_input == {}
    assert both.by_input["text"].path == predictor.taxonomy[both.by_input["text"].id].full_path
    tree = Taxonomy.from_paths(["Toys > Dolls", "Tools > Drills"])
    guess = Prediction("Toys > Dolls", "Toys > Dolls", 0.99)
    guess.by_input = {
        "text": CategoryScore("Toys > Dolls", "Toys > Dolls", 0.97),
        "image": CategoryScore("Tools > Drills", "Tools > Drills", 0.8),
    }
    reasons = review_reasons(guess, Product(title="doll"), tree, threshold=0.9)
    assert reasons == [
        "image and text disagree: the image says 'Tools > Drills' (0.80), the text 'Toys > Dolls' (0.97)"
    ]
    guess.by_input["image"] = CategoryScore("Tools > Drills", "Tools > Drills", 0.4)  # unsure photo
    assert review_reasons(guess, Product(title="doll"), tree, threshold=0.9) == []


def test_rows_with_only_an_image_go_through_their_own_mlp() -> None:
    config = tiny_config(vision="vit", text="bert", solo_mlps="image")
    assert config.solo_mlps == ["image"]
    model = MultimodalCatModel(config).eval()
    dims = {k: p.norm.normalized_shape[0] for k, p in model.fusion.projections.items()}
    inputs = {
        "image_embeds": torch.randn(3, dims["image"]),
        "text_embeds": torch.randn(3, dims["text"]),
        "image_mask": torch.tensor([True, True, False]),
        "text_mask": torch.tensor([True, False, True]),
        "labels": torch.tensor([3, 4, 6]),
    }
    model.train()
    model(**inputs).loss.backward()
    solo = model.fusion.single["image"][0].weight.grad
    shared = model.fusion.mlp[0].weight.grad
    assert solo is not None and solo.abs().sum() > 0 and shared.abs().sum() > 0
    model.zero_grad()
    only_image = {**inputs, "image_mask": torch.tensor([True, False, False])}
    only_image["text_mask"] = torch.tensor([True, True, True])  # every row has text
    model(**only_image).loss.backward()
    untouched = model.fusion.single["image"][0].weight.grad  # no row is image-only
    assert untouched is None or untouched.abs().sum() == 0
    assert set(model.state_dict()) >= {"fusion.single.image.0.weight", "fusion.mlp.0.weight"}
    text_only = MultimodalCatModel(tiny_config(vision=None, text="bert", solo_mlps="image"))
    assert text_only.fusion.single is None  # nothing to route in a one-tower model
    with pytest.raises(ValueError, match="solo_mlps may name 'image' and 'text'; got \\['imgae'\\]"):
        tiny_config(solo_mlps="imgae")


def test_letterbox_bars_are_trimmed_before_padding() -> None:
    from multimodal_cat.framing import trim_bars

    photo = Image.new("RGB", (60, 90), (3, 3, 3))  # a 2:3 upload with black bands
    photo.paste((255, 255, 255), (0, 15, 60, 75))  # the studio shot: white ...
    photo.paste((200, 0, 0), (20, 30, 40, 60))  # ... with the product in the middle
    assert trim_bars(photo).size == (60, 60)
    framed = fit_image(photo)
    assert framed.size == (60, 60) and framed.getpixel((0, 0)) == (255, 255, 255)
    light = Image.new("RGB", (60, 90), (255, 255, 255))
    light.paste((200, 0, 0), (20, 30, 40, 60))
    assert trim_bars(light).size == (60, 90)  # white margins are background, kept
    square = Image.new("RGB", (50, 50), (0, 0, 0))
    assert fit_image(square) is square  # square photos are never changed
