"""Review commands with a trained checkpoint: its tree for `review config|tasks|import`, and
`suggest --model` scoring with the images the feed names."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from multimodal_cat.cli.main import main
from multimodal_cat.predictors.checkpoint import ModelPredictor
from tests.test_cli_review import _Encoder


def test_review_import_is_importable_as_the_readme_says():
    from multimodal_cat.review import ReviewRouter
    from multimodal_cat.review.routing import ReviewRouter as Same

    assert ReviewRouter is Same


def test_review_config_import_and_tasks_take_the_tree_of_a_checkpoint(tmp_path, tiny_checkpoint, capsys):
    config = tmp_path / "labeling.xml"
    assert main(["review", "config", "--model", str(tiny_checkpoint), "-o", str(config)]) == 0
    xml = config.read_text()
    assert 'value="Sneakers"' in xml and 'value="Kitchen"' in xml  # the checkpoint's label space
    assert "7 categories" in capsys.readouterr().err
    export = tmp_path / "export.json"
    answer = {"from_name": "category", "value": {"taxonomy": [["Apparel", "Shoes", "Boots"]]}}
    export.write_text(json.dumps([{"data": {"id": "p1"}, "annotations": [{"id": 1, "result": [answer]}]}]))
    corrections = tmp_path / "corrections.jsonl"
    assert main(["review", "import", str(export), "--model", str(tiny_checkpoint), "-o", str(corrections)]) == 0
    assert json.loads(corrections.read_text())["category_path"] == "Apparel > Shoes > Boots"
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\np1,black leather boots\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("row,id,category_id,category_path,confidence\n1,p1,x,Apparel > Shoes > Boots,0.4\n")
    tasks = tmp_path / "tasks.json"
    code = main(["review", "tasks", str(feed), str(out), "--model", str(tiny_checkpoint), "-o", str(tasks)])
    assert code == 0 and json.loads(tasks.read_text())[0]["data"]["id"] == "p1"


def test_review_commands_want_one_tree_and_a_checkpoint_that_exists(tmp_path, capsys):
    out = str(tmp_path / "x.xml")
    assert main(["review", "config", "-o", out]) == 2
    assert "--taxonomy NAME_OR_FILE, or --model CKPT" in capsys.readouterr().err
    assert main(["review", "config", "--model", str(tmp_path / "missing"), "-o", out]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one tree, not two
        main(["review", "config", "--model", "a", "--taxonomy", "shopify", "-o", out])


@pytest.fixture
def image_feed(tmp_path):
    (tmp_path / "img").mkdir()
    for name, colour in (("boot", "black"), ("shirt", "blue")):
        Image.new("RGB", (40, 40), colour).save(tmp_path / "img" / f"{name}.png")
    path = tmp_path / "pool.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "image"])
        writer.writerows([("b", "black leather boots", "img/boot.png"), ("s", "blue cotton shirt", "img/shirt.png"),
                          ("k", "kitchen pan", "img/missing.png")])
    return path


def _spy_images(monkeypatch) -> list[bool]:
    seen: list[bool] = []
    real = ModelPredictor.predict_proba

    def spy(self, products):
        seen.extend(p.image is not None for p in products)
        return real(self, products)

    monkeypatch.setattr(ModelPredictor, "predict_proba", spy)
    return seen


def test_suggest_with_a_checkpoint_scores_with_the_images_the_feed_names(
    tmp_path, image_feed, tiny_checkpoint, monkeypatch, capsys
):
    from multimodal_cat.encoders.text import TextEncoder

    monkeypatch.setattr(TextEncoder, "from_name", classmethod(lambda cls, name, **_: _Encoder()))
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    seen = _spy_images(monkeypatch)
    tasks = tmp_path / "next.json"
    assert main(["suggest", str(image_feed), "--model", str(tiny_checkpoint), "-n", "3", "-o", str(tasks)]) == 0
    assert seen == [True, True, False]  # the two readable images; the missing one is said once
    err = capsys.readouterr().err
    assert err.count("could not be loaded") == 1
    assert "1 of 3 images could not be loaded" in err and "scored from their text only" in err
    assert {t["data"]["id"] for t in json.loads(tasks.read_text())} == {"b", "s", "k"}


def test_suggest_says_once_when_the_model_cannot_read_the_images(tmp_path, image_feed, monkeypatch, capsys):
    from multimodal_cat.encoders.text import TextEncoder
    from multimodal_cat.modeling.testing import tiny_model, tiny_processor

    text_only = tmp_path / "text-only"
    tiny_model(vision=None).save_pretrained(text_only)
    tiny_processor(tmp_path / "tok").save_pretrained(text_only)
    monkeypatch.setattr(TextEncoder, "from_name", classmethod(lambda cls, name, **_: _Encoder()))
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    seen = _spy_images(monkeypatch)
    tasks = tmp_path / "next.json"
    assert main(["suggest", str(image_feed), "--model", str(text_only), "-n", "2", "-o", str(tasks)]) == 0
    assert seen == [False, False, False]
    err = capsys.readouterr().err
    assert err.count("3 products name an image, but this model has no image tower: scoring from text only") == 1
