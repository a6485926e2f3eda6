"""``multimodal-cat evaluate``: metrics JSON, per-category CSV and plots from a labelled feed."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from multimodal_cat.cli.main import main


def _feed(tmp_path: Path) -> Path:
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (40, 40), "red").save(tmp_path / "pics" / "boot.jpg")
    feed = tmp_path / "test.csv"
    feed.write_text(
        "sku,productDisplayName,kind,leaf,image\n"
        "1,red leather boots,Apparel > Shoes,Boots,pics/boot.jpg\n"
        "2,blue cotton shirt,Apparel,Shirts,\n"
        "3,black mug,Space,Rockets,\n"
    )
    return feed


def test_evaluate_writes_metrics_table_and_plots(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    feed, out = _feed(tmp_path), tmp_path / "eval"
    code = main(["evaluate", str(feed), "--label-column", "kind,leaf", "--model", str(tiny_checkpoint), "-o", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rows_scored"] == 2 and metrics["unknown_labels"] == ["Space > Rockets"]
    assert {"leaf_accuracy", "leaf_macro_f1", "hierarchical_f1", "ece"} <= set(metrics["metrics"])
    rows = list(csv.DictReader((out / "per_category.csv").open()))
    assert {r["path"] for r in rows} >= {"Apparel > Shoes > Boots", "Apparel > Shirts"}
    assert sorted(p.name for p in out.glob("*.png")) == ["most_confused.png", "reliability.png"]
    err = capsys.readouterr().err
    assert "1 of 3 labels are not categories" in err and "leaf accuracy" in err


def test_evaluate_mistakes_answer_fast_with_exit_2(tmp_path: Path) -> None:
    feed = _feed(tmp_path)
    missing = subprocess.run(
        [sys.executable, "-c",
         "import sys; from multimodal_cat.cli.main import main; code = main(sys.argv[1:]); "
         "print('torch' in sys.modules); sys.exit(code)",
         "evaluate", str(feed), "--label-column", "kind", "--model", "./missing-folder", "-o", str(tmp_path / "e")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert missing.returncode == 2 and "model folder './missing-folder' not found" in missing.stderr
    assert missing.stdout.strip() == "False"  # answered before torch was imported
    assert main(["evaluate", str(tmp_path / "nope.csv"), "--label-column", "k", "-o", str(tmp_path / "e")]) == 2
