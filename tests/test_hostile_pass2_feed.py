"""Hostile pass two, the feed job: kept columns never collide with output columns, shard parts
are checked to belong to one job before merging (issue 22, items 10 and 15)."""

from __future__ import annotations

import csv

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
