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


# --- item 13: the corrections file survives a write cut short ---------------------------------
def _correction(pid, category="2"):
    from multimodal_cat.review import Correction

    return Correction(product_id=pid, action="changed", category_id=category)


def test_a_torn_last_line_is_dropped_before_appending(tmp_path, caplog):
    from multimodal_cat.review import read_corrections, write_corrections

    path = tmp_path / "corrections.jsonl"
    write_corrections([_correction("A1")], path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"product_id": "A2", "act')  # the disk filled up here
    assert [c.product_id for c in read_corrections(path)] == ["A1"]  # the torn line is ignored
    write_corrections([_correction("A3")], path)
    assert [c.product_id for c in read_corrections(path)] == ["A1", "A3"]
    assert path.read_text(encoding="utf-8").count("\n") == 2
    assert "torn" in caplog.text


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    from multimodal_cat.review import CorrectionError, read_corrections, write_corrections

    path = tmp_path / "corrections.jsonl"
    write_corrections([_correction("A1")], path)
    before = path.read_bytes()
    real_fsync = os.fsync
    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CorrectionError, match="No space left"):
        write_corrections([_correction("A2"), _correction("A3")], path)
    assert path.read_bytes() == before
    monkeypatch.setattr(os, "fsync", real_fsync)
    write_corrections([_correction("A4")], path)
    assert [c.product_id for c in read_corrections(path)] == ["A1", "A4"]


# --- small items: Label Studio exports ---------------------------------------------------------
def _answer(path, updated="2026-01-01T00:00:00Z", ident=1, **extra):
    result = [{"from_name": "category", "to_name": "title", "type": "taxonomy",
               "value": {"taxonomy": [path]}}]
    return {"id": ident, "updated_at": updated, "result": result, **extra}


def _import(tmp_path, tree, tasks, raw=None):
    export = tmp_path / "export.json"
    if raw is not None:
        export.write_bytes(raw)
    else:
        export.write_text(json.dumps(tasks), encoding="utf-8")
    out = tmp_path / "corrections.jsonl"
    return main(["review", "import", str(export), "--taxonomy", str(tree), "-o", str(out)]), out


def test_duplicate_products_keep_the_newest_answer_once(tmp_path, tree, capsys, caplog):
    tasks = [
        {"id": 1, "data": {"id": "A1"}, "annotations": [_answer(["Apparel", "Shoes"], "2026-03-01T00:00:00Z")]},
        {"id": 2, "data": {"id": "A1"}, "annotations": [_answer(["Apparel", "Shirts"], "2026-01-01T00:00:00Z")]},
    ]
    code, out = _import(tmp_path, tree, tasks)
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(c["product_id"], c["category_path"]) for c in lines] == [("A1", "Apparel > Shoes")]
    assert "1 answers" in capsys.readouterr().err and "several tasks" in caplog.text


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([{"data": {"id": "A1"}, "annotations": [{"result": [{"from_name": "category",
                                                               "value": {"taxonomy": "Apparel > Shoes"}}]}]}],
         "value.taxonomy"),
        ([{"data": {"id": "A1"}, "annotations": [_answer(["Apparel"], was_cancelled="false")]}], "was_cancelled"),
        ([{"data": ["A1"], "annotations": []}], "data to be an object"),
        ([{"data": {"id": {"x": 1}}, "annotations": []}], "data.id"),
        ([{"data": {"id": "A1"}, "annotations": "done"}], "annotations to be a list"),
        ([{"data": {"id": "A1"}, "annotations": [_answer(["Apparel"], ident=1),
                                                  _answer(["Kitchen"], ident="b")]}], None),
    ],
)
def test_malformed_answers_are_reported_not_skipped(tmp_path, tree, capsys, tasks, expected):
    code, out = _import(tmp_path, tree, tasks)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if expected is None:  # mixed annotation ids: read, not a crash
        assert code == 0
    else:
        assert code == 2 and expected in err and not out.exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"\xff\xfe[\x00]\x00", "UTF-8"), (b"[" * 100_000 + b"]" * 100_000, "nested too deeply")],
    ids=["utf-16", "100k-deep"],
)
def test_unreadable_exports_exit_2(tmp_path, tree, capsys, raw, expected):
    code, _ = _import(tmp_path, tree, None, raw=raw)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err


def test_non_utf8_corrections_exit_2(tmp_path, tree, capsys):
    feed = _feed(tmp_path, [("A1", "Blue cotton shirt")])
    out = _predictions(tmp_path, [("A1", "2", "Apparel > Shirts")])
    done = tmp_path / "done.jsonl"
    done.write_bytes(b'{"product_id": "\xff"}\n')
    code = main(["review", "tasks", str(feed), str(out), "--taxonomy", str(tree), "--exclude", str(done),
                 "-o", str(tmp_path / "tasks.json")])
    err = capsys.readouterr().err
    assert code == 2 and "UTF-8" in err and "Traceback" not in err


# --- small item: large inputs are streamed --------------------------------------------------------
def _peak_bytes(call):
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_export_is_streamed(tmp_path, tree):
    from multimodal_cat.review import read_export
    from multimodal_cat.taxonomy import Taxonomy

    export = tmp_path / "export.json"
    with open(export, "w", encoding="utf-8") as handle:  # about 12 MB, 2,000 tasks
        handle.write("[")
        for i in range(2_000):
            # "notes": text the corrections do not keep (they keep title, description, brand)
            task = {"id": i, "data": {"id": f"P{i}", "suggested_id": "2", "notes": "cotton " * 850},
                    "annotations": [_answer(["Apparel", "Shirts"], ident=i)]}
            handle.write(("," if i else "") + json.dumps(task))
        handle.write("]")
    taxonomy = Taxonomy.load(str(tree))
    corrections = []
    peak = _peak_bytes(lambda: corrections.extend(read_export(export, taxonomy)))
    assert len(corrections) == 2_000
    assert peak < export.stat().st_size / 3  # parsed whole, the tasks alone take more than the file


def test_review_tasks_streams_a_large_feed(tmp_path, tree):
    rows = 6_000
    feed = tmp_path / "feed.csv"
    with open(feed, "w", encoding="utf-8") as handle:  # about 12 MB of descriptions
        handle.write("id,title,description\n")
        for i in range(rows):
            handle.write(f"P{i},Shirt {i},{'soft cotton ' * 170}\n")
    predictions = _predictions(tmp_path, [(f"P{i}", "2", "Apparel > Shirts") for i in range(rows)])
    lines = predictions.read_text(encoding="utf-8").splitlines()
    # every row confident but the first ten: ten tasks
    predictions.write_text("\n".join([lines[0]] + [line.replace(",0.3", ",0.99") if n > 10 else line
                                                      for n, line in enumerate(lines[1:], start=1)]) + "\n")
    out = tmp_path / "tasks.json"
    code = []
    peak = _peak_bytes(lambda: code.append(_tasks(tree, feed, predictions, out)))
    assert code == [0] and len(json.loads(out.read_text())) == 10
    assert peak < feed.stat().st_size / 3
