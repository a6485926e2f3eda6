"""The examples run as written, on tiny encoders and a slice of the shared fashion data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FASHION = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (FASHION / "styles_with_images.csv").exists(), reason="shared fashion data absent")
def test_catalog_team_example_runs(tiny_encoders: tuple[str, str], tmp_path: Path) -> None:
    vision, text = tiny_encoders
    figures = _load("catalog_team").main([
        "--train-rows", "60", "--test-rows", "20", "--epochs", "1", "--output-dir", str(tmp_path / "ckpt"),
        "--text-encoder", text, "--vision-encoder", vision, "--results", str(tmp_path / "r.json"),
    ])
    assert figures["train_rows"] == 60 and figures["test_rows"] == 20
    for key in ("zero_shot", "fitted", "fitted_titles_only"):
        assert 0.0 <= figures[key]["leaf_accuracy"] <= 1.0
    assert figures["fitted_score"] == pytest.approx(figures["fitted"]["leaf_accuracy"], abs=0.1)  # cached vectors round
    assert (tmp_path / "r.json").exists()
