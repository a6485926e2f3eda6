"""Learning from review: `train --corrections`, and confidence temperatures fitted and stored at training time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image
from transformers import Trainer
from transformers.trainer_utils import TrainOutput

from multimodal_cat.cli.main import main
from multimodal_cat.taxonomy import Taxonomy
from tests.test_training_trainer import _feed


def _labels_seen(monkeypatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def spy(self, *args, **kwargs):  # the training rows' labels, in feed order
        paths = self.model.config.category_paths
        seen.append([paths[int(self.train_dataset[i]["labels"])] for i in range(len(self.train_dataset))])
        return TrainOutput(global_step=0, training_loss=0.0, metrics={"train_runtime": 0.0})

    monkeypatch.setattr(Trainer, "train", spy)
    monkeypatch.setattr(Trainer, "save_model", lambda self, *a, **k: None)
    return seen


def test_a_correction_wins_over_the_feed_label(tmp_path: Path, tiny_encoders, monkeypatch, capsys):
    _, text = tiny_encoders
    rows = [{"id": f"p{i}", **row} for i, row in enumerate(_feed(tmp_path))]
    feed = tmp_path / "feed.csv"
    pd.DataFrame(rows).drop(columns="image").to_csv(feed, index=False)
    corrections = tmp_path / "corrections.jsonl"
    answers = [
        {"product_id": "p0", "action": "changed", "category_id": "x", "category_path": "Home > Kitchen"},
        {"product_id": "p1", "action": "skipped"},
        {"product_id": "nobody", "action": "accepted", "category_id": "Apparel > Shirts"},
    ]
    corrections.write_text("".join(json.dumps(a) + "\n" for a in answers))
    seen = _labels_seen(monkeypatch)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--freeze-encoders", "--use_cpu"]
    flags += ["--report_to", "none", "--embedding-cache", "none", "--output_dir", str(tmp_path / "m")]
    assert main(flags) == 0
    assert main([*flags, "--corrections", str(corrections)]) == 0
    before, after = seen
    assert before[0] == "Apparel > Shoes > Sneakers" and after[0] == "Home > Kitchen"
    assert after[1:] == before[1:]  # skipped, or not reviewed: the feed's label stays
    assert "applied 1 reviewed labels" in capsys.readouterr().err


def test_corrections_need_an_id_column_and_a_readable_file(tmp_path: Path, tiny_encoders, capsys):
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text('{"product_id": "p0", "action": "changed", "category_id": "Home"}\n')
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--use_cpu", "--report_to", "none"]
    flags += ["--embedding-cache", "none", "--output_dir", str(tmp_path / "m")]
    assert main([*flags, "--corrections", str(corrections)]) == 2
    assert "--corrections needs a product id column" in capsys.readouterr().err
    with_ids = tmp_path / "ids.csv"
    pd.DataFrame([{"id": f"p{i}", **r} for i, r in enumerate(_feed(tmp_path))]).drop(columns="image").to_csv(with_ids, index=False)
    corrections.write_text("not json\n")
    flags[2] = str(with_ids)
    assert main([*flags, "--corrections", str(corrections)]) == 2
    assert "line 1: expected a JSON object" in capsys.readouterr().err


def test_training_with_an_eval_set_stores_fitted_temperatures(tmp_path: Path, tiny_encoders, capsys):
    from multimodal_cat.modeling import MultimodalCatConfig

    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path, n=16)).drop(columns="image").to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--eval-feed", str(feed), "--text-encoder", text]
    flags += ["--freeze-encoders", "--use_cpu", "--report_to", "none", "--embedding-cache", "none"]
    flags += ["--tag-column", "colour", "--num_train_epochs", "30"]
    assert main([*flags, "--output_dir", str(tmp_path / "m")]) == 0
    metrics = json.loads((tmp_path / "m" / "all_results.json").read_text())
    config = MultimodalCatConfig.from_pretrained(tmp_path / "m")
    assert config.category_temperature == metrics["calibration_category_temperature"] != 1.0
    assert config.tag_temperature == metrics["calibration_tag_temperature"] != 1.0
    assert metrics["calibration_ece_after"] <= metrics["calibration_ece_before"] + 1e-9
    assert set(config.confidence_thresholds) == {"0.95", "0.98", "0.99"}
    assert main([*flags, "--no-calibrate", "--output_dir", str(tmp_path / "raw")]) == 0
    assert MultimodalCatConfig.from_pretrained(tmp_path / "raw").category_temperature == 1.0


def test_the_stored_temperature_softens_every_prediction_of_the_checkpoint():
    import torch

    from multimodal_cat.modeling.testing import tiny_model

    model = tiny_model(vision=None)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(text_embeds=torch.randn(4, model.config.text_config.hidden_size) * 5)
    before = model.decode(out)
    model.config.category_temperature = 4.0
    after = model.decode(out)
    assert all(a.confidence < b.confidence for a, b in zip(after, before, strict=True))
    assert [p.category_id for p in after] == [p.category_id for p in before]  # same best leaf


def test_corrections_for_products_outside_the_feed_become_rows_or_are_refused_with_a_count(
    tmp_path: Path, tiny_encoders, monkeypatch, capsys
):
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame([{"id": f"p{i}", **r} for i, r in enumerate(_feed(tmp_path))]).drop(columns="image").to_csv(feed, index=False)
    answers = [
        {"product_id": "new", "action": "changed", "category_id": "x", "category_path": "Home > Kitchen",
         "title": "black pan"},
        {"product_id": "old", "action": "accepted", "category_id": "Apparel > Shirts"},  # no product kept
    ]
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text("".join(json.dumps(a) + "\n" for a in answers))
    seen = _labels_seen(monkeypatch)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--freeze-encoders", "--use_cpu"]
    flags += ["--report_to", "none", "--embedding-cache", "none", "--output_dir", str(tmp_path / "m")]
    assert main([*flags, "--corrections", str(corrections)]) == 0
    assert len(seen[0]) == 9 and seen[0][-1] == "Home > Kitchen"  # the feed's 8 rows + the new product
    err = capsys.readouterr().err
    assert "added 1 reviewed products that are not in the feed as training rows" in err
    assert "refused 1 reviewed labels for products that are not in the feed" in err


def test_a_reviewed_product_outside_the_feed_trains_with_its_image(tmp_path: Path):
    """Label Studio task -> export -> corrections file -> a training row with the image."""
    from multimodal_cat.predictions import Prediction
    from multimodal_cat.products import Product
    from multimodal_cat.review import read_corrections, read_export, to_tasks, write_corrections
    from multimodal_cat.review.task_images import TaskImages
    from multimodal_cat.training.arguments import DataArguments
    from multimodal_cat.training.run import load_training_sets

    rows = [{"id": f"p{i}", **r} for i, r in enumerate(_feed(tmp_path))]
    pd.DataFrame(rows).to_csv(tmp_path / "feed.csv", index=False)
    (tmp_path / "pool").mkdir()
    Image.new("RGB", (36, 36), "red").save(tmp_path / "pool" / "new.png")
    product = Product(id="new", title="red boots", image_ref="new.png")
    guess = Prediction("x", "Apparel > Shirts", 0.4)
    task = to_tasks([product], [guess], images=TaskImages(tmp_path / "pool", tmp_path))[0]
    answer = {"from_name": "category", "value": {"taxonomy": [["Apparel", "Shoes", "Boots"]]}}
    export = [{**task, "annotations": [{"id": 1, "result": [answer]}]}]
    tree = Taxonomy.from_paths(sorted({r["category"] for r in rows} | {"Apparel > Shoes > Boots"}))
    write_corrections(read_export(export, tree), tmp_path / "corrections.jsonl")
    assert read_corrections(tmp_path / "corrections.jsonl")[0].image == str((tmp_path / "pool" / "new.png").resolve())
    data = DataArguments(feed=str(tmp_path / "feed.csv"), corrections=str(tmp_path / "corrections.jsonl"))
    train = load_training_sets(data, seed=0, with_images=True).train
    assert len(train) == 9
    assert train[8]["title"] == "red boots"
    assert train[8]["image"] == str((tmp_path / "pool" / "new.png").resolve())
