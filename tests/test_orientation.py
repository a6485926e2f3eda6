"""Issue 27: a sideways product photo is recognised and read turned back upright."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from PIL import Image

from multimodal_cat.modeling.orientation import TURNS, OrientationProbe
from multimodal_cat.modeling.testing import tiny_model, tiny_processor
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product
from multimodal_cat.training.orientation import MIN_PHOTOS, fit_orientation_probe


def _photo(seed: int, size: tuple[int, int] = (40, 24)) -> Image.Image:
    """A photo that is not symmetric, so each turn gives other pixels."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    pixels[: size[1] // 3] = 255  # a bright top band: "up" is visible
    return Image.fromarray(pixels)


def _probe_knowing(predictor: ModelPredictor, photo: Image.Image, **settings) -> dict:
    """A probe built from ``photo``'s four turns as the tiny tower sees them: it tells them apart."""
    views = predictor.embedder.embed_images([photo.rotate(d, expand=True) for d in TURNS])
    weight = (views - views.mean(0)) * 50.0
    return OrientationProbe(weight=weight.tolist(), bias=[0.0] * 4, **settings).to_dict()


def _predictor(tmp_path: Path) -> ModelPredictor:
    torch.manual_seed(0)  # one tiny tower: a random one may see two turns of a photo alike
    return ModelPredictor(tiny_model(), tiny_processor(tmp_path / "tok"))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_photo_sent_turned_is_read_turned_back_with_a_warning(tmp_path: Path, degrees: int) -> None:
    predictor = _predictor(tmp_path)
    upright = _photo(0)
    turned = upright.rotate(degrees, expand=True)
    title = "red leather boots"
    plain = predictor.predict([Product(title=title, image=upright)])[0]
    as_sent = predictor.predict([Product(title=title, image=turned)])[0]
    assert as_sent.alternatives != plain.alternatives  # the tiny tower sees the turn
    predictor.model.config.orientation_probe = _probe_knowing(predictor, upright)
    fixed = predictor.predict([Product(title=title, image=turned), Product(title=title, image=upright)])
    for answer in fixed:
        assert [a.id for a in answer.alternatives] == [a.id for a in plain.alternatives]
        assert [a.score for a in answer.alternatives] == pytest.approx([a.score for a in plain.alternatives])
    assert any(f"turned by {degrees} degrees" in w for w in fixed[0].warnings)
    assert not fixed[1].warnings  # upright: read as it came


def test_an_unsure_vote_leaves_the_photo_as_it_came(tmp_path: Path) -> None:
    predictor = _predictor(tmp_path)
    upright = _photo(1)
    turned = upright.rotate(270, expand=True)
    before = predictor.predict([Product(image=turned)])[0]
    predictor.model.config.orientation_probe = _probe_knowing(predictor, upright, min_probability=1.01)
    after = predictor.predict([Product(image=turned)])[0]
    assert after.alternatives == before.alternatives
    assert not after.warnings


def _photo_set(tmp_path: Path, n: int) -> Dataset:
    paths = []
    for i in range(n):
        path = tmp_path / f"p{i}.png"
        _photo(i).save(path)
        paths.append(str(path))
    return Dataset.from_dict({"image": paths + [""], "labels": [0] * (n + 1)})


def test_training_fits_a_probe_that_the_checkpoint_keeps(tmp_path: Path) -> None:
    model, processor = tiny_model(), tiny_processor(tmp_path / "tok")
    figures = fit_orientation_probe(model, processor, _photo_set(tmp_path, 30), photos=30)
    probe = OrientationProbe.from_dict(model.config.orientation_probe)
    assert probe is not None and figures["orientation_photos"] == 30
    assert np.asarray(probe.weight).shape == (4, model.config.vision_config.hidden_size * 2)
    assert 0.5 <= probe.min_probability <= 0.99
    assert probe.mode == figures["orientation_mode"] in ("turn", "flag")
    for key in ("orientation_turned_photos_read_upright", "orientation_upright_photos_found_turned"):
        assert 0.0 <= figures[key] <= 1.0
    model.save_pretrained(tmp_path / "ckpt")
    again = type(model).from_pretrained(tmp_path / "ckpt")
    assert again.config.orientation_probe == model.config.orientation_probe


def test_too_few_photos_or_no_image_tower_fit_no_probe(tmp_path: Path) -> None:
    processor = tiny_processor(tmp_path / "tok")
    few = _photo_set(tmp_path, MIN_PHOTOS - 1)
    model = tiny_model()
    assert fit_orientation_probe(model, processor, few) == {}
    assert model.config.orientation_probe is None
    text_only = tiny_model(vision=None)
    assert fit_orientation_probe(text_only, processor, _photo_set(tmp_path, 25)) == {}


@pytest.mark.parametrize("photos", [24, 0])
def test_train_fits_the_probe_unless_told_not_to(
    tmp_path: Path, tiny_encoders: tuple[str, str], photos: int, capsys
) -> None:
    from multimodal_cat.cli.main import main
    from multimodal_cat.modeling import MultimodalCatModel

    vision, text = tiny_encoders
    rows = []
    for i in range(24):
        _photo(i, (36, 30)).save(tmp_path / f"{i}.png")
        rows.append({"title": ["red boots", "blue shirt"][i % 2], "image": str(tmp_path / f"{i}.png"),
                     "category": ["Apparel > Shoes > Boots", "Apparel > Shirts"][i % 2]})
    feed = tmp_path / "feed.csv"
    pd.DataFrame(rows).to_csv(feed, index=False)
    flags = ["--text-encoder", text, "--vision-encoder", vision, "--freeze-encoders", "--max_steps", "2",
             "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--projection-dim", "16",
             "--fusion-hidden-dim", "24", "--embedding-cache", str(tmp_path / "cache"),
             "--orientation-photos", str(photos)]
    assert main(["train", "--feed", str(feed), "--output_dir", str(tmp_path / "m"), *flags]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.rindex("{\n") :])
    stored = MultimodalCatModel.from_pretrained(tmp_path / "m").config.orientation_probe
    card = (tmp_path / "m" / "README.md").read_text()
    if photos:
        assert stored is not None and metrics["orientation_photos"] == 24
        assert "Sideways photos: a photo that an orientation probe" in card  # the card says what it does
    else:
        assert stored is None and "orientation_photos" not in metrics
        assert "Sideways photos" not in card


def test_in_flag_mode_a_turned_photo_is_not_trusted_but_not_turned(tmp_path: Path) -> None:
    predictor = _predictor(tmp_path)
    upright = _photo(3)
    turned = upright.rotate(90, expand=True)
    title = "blue cotton shirt"
    text_alone = predictor.predict([Product(title=title)])[0]
    photo_alone = predictor.predict([Product(image=turned)])[0]
    predictor.model.config.orientation_probe = _probe_knowing(predictor, upright) | {"mode": "flag"}
    both, alone = predictor.predict([Product(title=title, image=turned), Product(image=turned)])
    assert both.inputs == "text" and both.category_id == text_alone.category_id
    assert both.confidence == pytest.approx(text_alone.confidence)
    assert any("answered from the text alone" in w for w in both.warnings)
    assert alone.category_id == photo_alone.category_id  # read as it came...
    assert alone.confidence < 0.5 * photo_alone.confidence  # ...but not trusted
    assert any("held at low confidence" in w for w in alone.warnings)


def test_a_probe_that_would_turn_upright_held_out_photos_is_stored_in_flag_mode() -> None:
    from multimodal_cat.training.orientation import _choose, _fit

    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 60, 8)).astype(np.float32)
    turns = np.eye(4, 8, dtype=np.float32)[:, None, :] * 6.0  # each turn moves a photo its own way
    training = base + turns + rng.normal(scale=0.1, size=(4, 60, 8)).astype(np.float32)
    classifier = _fit(training)
    assert _choose(classifier, training[:, :20])[1] == "turn"
    # held-out "upright" photos that look like the training photos turned by 180 degrees
    shifted = np.roll(training[:, 20:40], 2, axis=0)
    threshold, mode, figures = _choose(classifier, shifted)
    assert mode == "flag" and figures["orientation_upright_photos_found_turned"] > 0.5
