"""Hostile pass two, the feed job: kept columns never collide with output columns, shard parts
are checked to belong to one job before merging (issue 22, items 10 and 15)."""

from __future__ import annotations

import csv
import json

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.feeds.columns import passthrough_columns


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_keep_star_prefixes_colliding_columns_and_says_so(tmp_path, capsys, caplog, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    feed = _write(tmp_path / "feed.csv", ["id", "title", "status", "google_category_id", "input_status"],
                  [["A1", "Blue shirt", "active", "1604", "x"], ["A2", "Mug", "draft", "2169", "y"]])
    out = tmp_path / f"out{suffix}"
    code = main(["categorize", str(feed), "--dry-run", "--no-progress", "--map-to", "google",
                 "--keep", "*", "-o", str(out)])
    assert code == 0
    import pandas as pd

    table = pd.read_csv(out, dtype=str) if suffix == ".csv" else pd.read_parquet(out)
    assert len(set(table.columns)) == len(table.columns)  # no duplicated names
    assert list(table["input_status"]) == ["x", "y"]  # the feed's own column keeps its name
    assert list(table["input_input_status"]) == ["active", "draft"]
    assert list(table["input_google_category_id"]) == ["1604", "2169"]
    assert list(table["status"]) == ["ok", "ok"] and list(table["input_id"]) == ["A1", "A2"]
    assert "status -> input_input_status" in caplog.text
    assert "google_category_id -> input_google_category_id" in caplog.text


def test_passthrough_columns_keep_names_that_do_not_collide():
    assert passthrough_columns(["sku"], ["sku", "title"], taken=["row", "id"]) == {"sku": "sku"}


# --- item 15: --merge-shards checks the parts belong to one job ----------------------------------
def _shards(tmp_path, feeds, out_name="out.csv"):
    out = tmp_path / out_name
    for index, feed in enumerate(feeds):
        code = main(["categorize", str(feed), "--dry-run", "--no-progress", "--shard", f"{index}/{len(feeds)}",
                     "-o", str(out)])
        assert code == 0
    return out


def _merge(out, count):
    return main(["categorize", "--merge-shards", str(count), "-o", str(out)])


def _feed(tmp_path, name, titles):
    return _write(tmp_path / name, ["id", "title"], [[f"{name}-{i}", t] for i, t in enumerate(titles, 1)])


def test_merge_refuses_parts_of_different_feeds(tmp_path, capsys):
    a = _feed(tmp_path, "a.csv", ["Blue shirt", "Mug", "Pan", "Boots"])
    b = _feed(tmp_path, "b.csv", ["Red shirt", "Cup", "Pot", "Shoes"])
    out = _shards(tmp_path, [a, b])
    assert _merge(out, 2) == 2
    err = capsys.readouterr().err
    assert "different jobs" in err and "feed" in err and not out.exists()


def test_merge_of_one_job_still_works(tmp_path, capsys):
    a = _feed(tmp_path, "a.csv", ["Blue shirt", "Mug", "Pan", "Boots", "Hat"])
    out = _shards(tmp_path, [a, a])
    assert _merge(out, 2) == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert [r["id"] for r in rows] == [f"a.csv-{i}" for i in range(1, 6)]


def test_merge_refuses_a_part_cut_short_after_it_finished(tmp_path, capsys):
    a = _feed(tmp_path, "a.csv", ["Blue shirt", "Mug", "Pan", "Boots", "Hat"])
    out = _shards(tmp_path, [a, a])
    part = tmp_path / "out.shard-0-of-2.csv"  # rows 1, 3, 5
    part.write_text("".join(part.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    assert _merge(out, 2) == 2
    assert "changed since it finished" in capsys.readouterr().err and not out.exists()


def test_merge_detects_a_missing_tail(tmp_path, capsys):
    import hashlib

    from multimodal_cat.feeds.write import checkpoint_path

    a = _feed(tmp_path, "a.csv", ["Blue shirt", "Mug", "Pan", "Boots", "Hat"])
    out = _shards(tmp_path, [a, a])
    part = tmp_path / "out.shard-0-of-2.csv"  # rows 1, 3, 5: drop row 5 with a matching checkpoint
    data = b"".join(part.read_bytes().splitlines(keepends=True)[:-1])
    part.write_bytes(data)
    state_file = checkpoint_path(part)
    state = json.loads(state_file.read_text())
    state.update(rows=state["rows"] - 1, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    state_file.write_text(json.dumps(state))
    assert _merge(out, 2) == 2  # rows 1..4 are contiguous: only the record count shows row 5 is gone
    err = capsys.readouterr().err
    assert "tail" in err and "5 records" in err and not out.exists()
