"""Issue 27: a checkpoint's thresholds per input kind, refitted on reviewed newer products."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from PIL import Image

from multimodal_cat.cli.main import main
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product
from multimodal_cat.review.checkpoint_thresholds import ABOVE_ONE


def _reviews(tmp_path: Path, predictor: ModelPredictor) -> Path:
    """60 titles reviewed as the checkpoint answers them, 60 titles + photos reviewed as a
    category it never answers, 10 photos alone."""
    photo = tmp_path / "p.png"
    Image.new("RGB", (30, 30), "red").save(photo)
    titles = ["red leather boots", "blue cotton shirt", "black wool coat"] * 20
    said = predictor.predict([Product(title=t) for t in titles])
    with_photo = predictor.predict([Product(title=t, image=Image.open(photo)) for t in titles])
    never = next(p for p in predictor.taxonomy.leaves() if p.id not in {a.category_id for a in with_photo})
    rows = [{"title": t, "image": "", "category": p.category_path} for t, p in zip(titles, said, strict=True)]
    rows += [{"title": t, "image": str(photo), "category": never.full_path} for t in titles]
    rows += [{"title": "", "image": str(photo), "category": never.full_path}] * 10
    feed = tmp_path / "reviewed.csv"
    pd.DataFrame(rows).to_csv(feed, index=False)
    return feed


def test_calibrate_model_refits_each_input_kind_from_reviews(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["confidence_thresholds_by_input"] = {"image": {"0.9": 0.5}, "text+image": {"0.9": 0.2}}
    (folder / "config.json").write_text(json.dumps(config))
    feed = _reviews(tmp_path, ModelPredictor.from_pretrained(str(folder), cache=False))
    assert main(["calibrate", str(feed), "--model", str(folder), "--target-precision", "0.9"]) == 0
    err = capsys.readouterr().err
    assert "[text] 60 reviewed answers" in err and "[image] 10 reviewed answers (fewer than 50" in err
    stored = json.loads((folder / "config.json").read_text())["confidence_thresholds_by_input"]
    assert stored["text"]["0.9"] <= 1.0  # every reviewed title answer was right
    assert stored["text+image"]["0.9"] == ABOVE_ONE  # none was: nothing auto-accepted any more
    assert stored["image"] == {"0.9": 0.5}  # too few reviews: the checkpoint's own stays
    record = json.loads((folder / "reviewed_thresholds.json").read_text())
    assert record["reviews"] == {"text+image": 60, "text": 60, "image": 10}
    by_input = ModelPredictor.from_pretrained(str(folder), cache=False).thresholds_by_input("0.9")
    assert by_input["text+image"] > 1.0 and by_input["text"] <= 1.0  # what review routing reads


def test_calibrate_model_dry_run_and_mistakes(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    before = (folder / "config.json").read_text()
    feed = _reviews(tmp_path, ModelPredictor.from_pretrained(str(folder), cache=False))
    assert main(["calibrate", str(feed), "--model", str(folder), "--dry-run"]) == 0
    assert (folder / "config.json").read_text() == before and not (folder / "reviewed_thresholds.json").exists()
    assert main(["calibrate", str(feed), "--model", str(tmp_path / "nope")]) == 2
    assert "expected a checkpoint folder" in capsys.readouterr().err
    assert main(["calibrate", str(feed), "--model", str(folder), "--label-column", "missing"]) == 2
