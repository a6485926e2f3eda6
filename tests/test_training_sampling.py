"""Repeating the training rows that have an image (``repeat_imaged_rows``, ``--imaged-row-repeats``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multimodal_cat.feeds.columns import ColumnMap
from multimodal_cat.modeling import LabelSpace
from multimodal_cat.training import (
    build_dataset,
    embedding_dataset,
    repeat_imaged_rows,
)
from multimodal_cat.training.sampling import repeat_indices


def test_repeat_indices_lists_every_row_then_the_imaged_ones_again() -> None:
    has_image = np.array([True, False, False, True])
    assert repeat_indices(has_image, 1).tolist() == [0, 1, 2, 3]
    assert repeat_indices(has_image, 3).tolist() == [0, 1, 2, 3, 0, 3, 0, 3]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number >= 1"):
            repeat_indices(has_image, bad)


def test_repeat_imaged_rows_on_cached_embeddings_keeps_rows_together() -> None:
    embeds = np.arange(12, dtype=np.float32).reshape(3, 4)
    dataset = embedding_dataset(
        [5, 6, 7], image_embeds=embeds, text_embeds=embeds * 2, image_mask=[False, True, False]
    )
    repeated = repeat_imaged_rows(dataset, 3)
    assert len(repeated) == 5
    assert repeated.columns["labels"].tolist() == [5, 6, 7, 6, 6]
    last = repeated[4]
    torch.testing.assert_close(last["text_embeds"], torch.from_numpy(embeds[1] * 2))
    assert bool(last["image_mask"]) and repeat_imaged_rows(dataset, 1) is dataset


def test_repeat_imaged_rows_on_a_feed_dataset(tmp_path: Path) -> None:
    space = LabelSpace.from_paths(["A > B", "A > C"])
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(image)
    rows = [
        {"title": "b", "category": "A > B", "image": str(image)},
        {"title": "c", "category": "A > C", "image": ""},
    ]
    dataset, _ = build_dataset(rows, space, ColumnMap(image="image"))
    repeated = repeat_imaged_rows(dataset, 2)
    assert repeated["title"] == ["b", "c", "b"]
    text_only, _ = build_dataset(rows, space, ColumnMap(), images=False)
    with pytest.raises(ValueError, match="expected an 'image_mask' or 'image' column; found"):
        repeat_imaged_rows(text_only.remove_columns("image"), 2)


def test_the_training_package_exports_what_the_readme_names() -> None:
    import multimodal_cat.training as training
    from multimodal_cat.training import add_input_views  # the README's spelling
    from multimodal_cat.training.sampling import add_input_views as defined

    assert add_input_views is defined
    for name in ("DataArguments", "ModelArguments", "FROZEN_HEAD", "repeat_imaged_rows"):
        assert getattr(training, name) is not None
    assert {name for name in training.__all__ if getattr(training, name) is None} == set()
