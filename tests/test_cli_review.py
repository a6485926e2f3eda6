"""`multimodal-cat review tasks|config|import` and `multimodal-cat suggest`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.predictions import CategoryScore, Prediction

PATHS = ["Toys > Construction Sets", "Toys > Dolls", "Hardware > Masonry > Bricks"]


@pytest.fixture
def tree_file(tmp_path):
    path = tmp_path / "tree.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path"])
        writer.writerows([("t", "Toys"), ("h", "Hardware"), ("h-1", "Hardware > Masonry"),
                          ("t-1", PATHS[0]), ("t-2", PATHS[1]), ("h-1-1", PATHS[2])])
    return path


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(
        "id,title,image\nlego,LEGO Classic Bricks,img/lego.jpg\ndoll,Barbie doll,\nbrick,Clay brick 10 pack,\n",
        encoding="utf-8",
    )
    return path


def _output(tmp_path, rows):
    path = tmp_path / "out.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["row", "id", "status", "category_id", "category_path",
                                         "confidence", "alternatives"])
        writer.writeheader()
        for number, (cid, path_, conf) in enumerate(rows, start=1):
            alternatives = json.dumps([{"id": cid, "path": path_, "score": conf}])
            writer.writerow({"row": number, "id": "", "status": "ok", "category_id": cid,
                             "category_path": path_, "confidence": conf, "alternatives": alternatives})
    return path


def test_review_tasks_queue_only_uncertain_rows_and_skip_reviewed(tmp_path, tree_file, feed, capsys, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", raising=False)
    out = _output(tmp_path, [("h-1-1", PATHS[2], 0.55), ("t-2", PATHS[1], 0.97), ("h-1-1", PATHS[2], 0.6)])
    done = tmp_path / "corrections.jsonl"
    done.write_text(json.dumps({"product_id": "brick", "action": "accepted", "category_id": "h-1-1"}) + "\n")
    tasks = tmp_path / "tasks.json"
    code = main(["review", "tasks", str(feed), str(out), "--taxonomy", str(tree_file), "--below", "0.8",
                 "--exclude", str(done), "-o", str(tasks)])
    assert code == 0
    written = json.loads(tasks.read_text())
    assert [t["data"]["id"] for t in written] == ["lego"]
    assert written[0]["data"]["image"] == "/data/local-files/?d=img/lego.jpg"  # under the feed's folder
    assert written[0]["data"]["image_source"] == str((tmp_path / "img" / "lego.jpg").resolve())
    assert written[0]["data"]["reason"] == "confidence 0.55 < 0.80"
    assert "1 of 3 products queued" in capsys.readouterr().err


def test_review_config_and_import_round_trip(tmp_path, tree_file, capsys):
    config = tmp_path / "labeling.xml"
    assert main(["review", "config", "--taxonomy", str(tree_file), "-o", str(config)]) == 0
    assert "<Taxonomy" in config.read_text()
    export = tmp_path / "export.json"
    answer = {"from_name": "category", "to_name": "title", "type": "taxonomy",
              "value": {"taxonomy": [["Toys", "Construction Sets"]]}}
    export.write_text(json.dumps([
        {"data": {"id": "lego", "suggested_id": "h-1-1"}, "annotations": [{"id": 1, "result": [answer]}]},
        {"data": {"id": "doll", "suggested_id": "t-2"}, "annotations": [{"id": 2, "result": [], "was_cancelled": True}]},
    ]))
    corrections = tmp_path / "corrections.jsonl"
    assert main(["review", "import", str(export), "--taxonomy", str(tree_file), "-o", str(corrections)]) == 0
    lines = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert [(c["product_id"], c["action"], c["category_id"]) for c in lines] == [
        ("lego", "changed", "t-1"), ("doll", "skipped", "")]
    assert "2 answers (0 accepted, 1 changed, 1 skipped)" in capsys.readouterr().err


def test_review_import_of_an_unknown_category_exits_2_with_the_path(tmp_path, tree_file, capsys):
    export = tmp_path / "export.json"
    answer = {"from_name": "category", "value": {"taxonomy": [["Toys", "Rockets"]]}}
    export.write_text(json.dumps([{"data": {"id": "x"}, "annotations": [{"id": 1, "result": [answer]}]}]))
    code = main(["review", "import", str(export), "--taxonomy", str(tree_file), "-o", str(tmp_path / "c.jsonl")])
    assert code == 2
    assert "'Toys > Rockets'" in capsys.readouterr().err


class _Predictor:
    def __init__(self, tree):
        self.taxonomy = tree
        self.classes_ = ["t-1", "t-2", "h-1-1"]

    def predict_proba(self, products):
        rows = {"LEGO Classic Bricks": [0.4, 0.2, 0.4], "Barbie doll": [0.05, 0.9, 0.05]}
        return np.array([rows.get(p.title, [0.34, 0.33, 0.33]) for p in products])

    def predict(self, products, *, top_k=5, min_confidence=None):
        out = []
        for row in self.predict_proba(products):
            best = int(row.argmax())
            cid = self.classes_[best]
            path = self.taxonomy[cid].full_path
            out.append(Prediction(cid, path, float(row[best]), alternatives=[CategoryScore(cid, path, float(row[best]))]))
        return out


class _Encoder:
    key = "test:words"

    def encode(self, texts, **_):
        return np.array([[len(t), t.count(" ") + 1.0, 1.0] for t in texts], dtype=np.float32)


def test_suggest_writes_the_most_useful_products_as_tasks(tmp_path, tree_file, feed, monkeypatch):
    from multimodal_cat.encoders.text import TextEncoder
    from multimodal_cat.taxonomy import Taxonomy

    tree = Taxonomy.load(tree_file)
    monkeypatch.setattr("multimodal_cat.predictors.build.build_predictor", lambda **_: _Predictor(tree))
    monkeypatch.setattr(TextEncoder, "from_name", classmethod(lambda cls, name, **_: _Encoder()))
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    tasks = tmp_path / "next.json"
    assert main(["suggest", str(feed), "--taxonomy", str(tree_file), "-n", "2", "-o", str(tasks)]) == 0
    picked = [t["data"]["id"] for t in json.loads(tasks.read_text())]
    assert picked == ["brick", "lego"]  # the sure doll is left for later
    command = ["suggest", str(feed), "--taxonomy", str(tree_file), "-n", "2", "--cold-start"]
    assert main([*command, "-o", str(tasks)]) == 0  # nothing reviewed: cover the pool instead
    cold = json.loads(tasks.read_text())
    assert len(cold) == 2 and len({t["data"]["id"] for t in cold}) == 2
    assert all("cold start" in t["data"]["reason"] for t in cold), cold[0]["data"]
    assert main(["suggest", str(feed), "--taxonomy", str(tree_file), "-n", "0", "-o", str(tasks)]) == 2
