"""`multimodal-cat train --corrections`: a reviewer's answer changes the next run's label."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from transformers import Trainer
from transformers.trainer_utils import TrainOutput

from multimodal_cat.cli.main import main
from tests import test_training_trainer
from tests.test_training_trainer import _feed

tiny_encoders = test_training_trainer.tiny_encoders  # the fixture


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
