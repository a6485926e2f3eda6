"""Hostile pass two, review side: `review tasks` joins by row AND id, `review import` appends
atomically and reads malformed exports as plain errors (issue 22, items 7 and 13, small items)."""

from __future__ import annotations

import csv
import json

import pytest

from multimodal_cat.cli.main import main

TREE = "id,parent_id,name\n1,,Apparel\n2,1,Shirts\n3,1,Shoes\n4,,Kitchen\n5,4,Mugs\n6,4,Pans\n"


@pytest.fixture
def tree(tmp_path):
    path = tmp_path / "tree.csv"
    path.write_text(TREE, encoding="utf-8")
    return path


def _feed(tmp_path, rows, name="feed.csv"):
    path = tmp_path / name
    path.write_text("id,title\n" + "".join(f"{i},{t}\n" for i, t in rows), encoding="utf-8")
    return path


def _predictions(tmp_path, rows, name="out.csv"):
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["row", "id", "status", "category_id", "category_path", "confidence"])
        writer.writeheader()
        for number, (pid, cid, cpath) in enumerate(rows, start=1):
            writer.writerow({"row": number, "id": pid, "status": "ok", "category_id": cid,
                             "category_path": cpath, "confidence": 0.3})
    return path


def _tasks(tree, feed, predictions, out):
    return main(["review", "tasks", str(feed), str(predictions), "--taxonomy", str(tree),
                 "--below", "0.9", "-o", str(out)])


def test_tasks_join_predictions_of_the_same_feed(tmp_path, tree, capsys):
    feed = _feed(tmp_path, [("A1", "Blue cotton shirt"), ("A2", "Mug")])
    out = _predictions(tmp_path, [("A1", "2", "Apparel > Shirts"), ("A2", "5", "Kitchen > Mugs")])
    assert _tasks(tree, feed, out, tmp_path / "tasks.json") == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert [(t["data"]["id"], t["data"]["title"], t["data"]["suggested_path"]) for t in tasks] == [
        ("A1", "Blue cotton shirt", "Apparel > Shirts"), ("A2", "Mug", "Kitchen > Mugs")]


def test_tasks_refuse_predictions_of_another_feed(tmp_path, tree, capsys):
    feed = _feed(tmp_path, [("A1", "Blue cotton shirt"), ("A2", "Mug")])
    other = _predictions(tmp_path, [("B1", "3", "Apparel > Shoes"), ("B2", "6", "Kitchen > Pans")])
    target = tmp_path / "tasks.json"
    assert _tasks(tree, feed, other, target) == 2
    err = capsys.readouterr().err
    assert "row 1: id 'B1' in the predictions, 'A1' in the feed" in err
    assert "Traceback" not in err and not target.exists()


def test_tasks_refuse_predictions_with_rows_the_feed_does_not_have(tmp_path, tree, capsys):
    feed = _feed(tmp_path, [("A1", "Blue cotton shirt")])
    out = _predictions(tmp_path, [("A1", "2", "Apparel > Shirts"), ("A2", "5", "Kitchen > Mugs")])
    assert _tasks(tree, feed, out, tmp_path / "tasks.json") == 2
    assert "row 2: id 'A2' in the predictions, no such row in the feed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("nope.csv", "id,category_path\nA1,Apparel\n", "'row' column"),
        ("bad.jsonl", '{"row": 1, "id": "A1"\n', "cannot be read"),
        ("nopath.jsonl", '{"row": 1, "id": "A1"}\n', "expected the `categorize` output"),
        ("badrow.jsonl", '{"row": "x", "id": "A1", "category_path": "Apparel"}\n', "expected a row number"),
        ("alts.jsonl", '{"row": 1, "id": "A1", "category_id": "1", "category_path": "Apparel", '
                       '"confidence": 0.1, "alternatives": "[oops"}\n', "alternatives"),
    ],
)
def test_tasks_malformed_predictions_exit_2(tmp_path, tree, capsys, name, text, expected):
    feed = _feed(tmp_path, [("A1", "Blue cotton shirt")])
    predictions = tmp_path / name
    predictions.write_text(text, encoding="utf-8")
    assert _tasks(tree, feed, predictions, tmp_path / "tasks.json") == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
