"""Datasets from feed tables, collators, and the pure metric functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multimodal_cat.feeds.columns import ColumnMap
from multimodal_cat.modeling import LabelSpace, TagGroup
from multimodal_cat.modeling.testing import TINY_PATHS, tiny_processor
from multimodal_cat.training import (
    EmbeddingCollator,
    MultimodalCatCollator,
    build_dataset,
    category_metrics,
    embedding_dataset,
    hierarchical_prf,
    infer_tag_groups,
    per_level_accuracy,
    tag_metrics,
    tag_predictions,
)

GROUPS = [
    TagGroup("color", ("red", "blue", "black")),
    TagGroup("material", ("cotton", "leather"), True),
]
COLUMNS = ColumnMap(tags={"color": "colour", "material": "material"})


def _rows(image: str = "") -> list[dict]:
    return [
        {
            "title": "red sneakers",
            "category": "Apparel > Shoes > Sneakers",
            "colour": "Red",
            "image": image,
        },
        {"title": "black boots", "category": "apparel >shoes", "material": "leather|cotton"},
        {"title": "pan", "category": "Home > Kitchen", "colour": "green"},
        {"title": "shirt", "category": ""},
    ]


def test_build_dataset_resolves_ids_paths_and_tags() -> None:
    space = LabelSpace.from_paths(TINY_PATHS)
    dataset, report = build_dataset(_rows(), space, COLUMNS, tag_groups=GROUPS)
    assert dataset["labels"] == [2, 1, 6, -100]
    assert dataset[0]["tag_labels"] == [1.0, 0.0, 0.0, -100.0, -100.0]
    assert dataset[1]["tag_labels"] == [-100.0, -100.0, -100.0, 1.0, 1.0]
    assert report.unknown_tag_values[("color", "green")] == 1
    assert report.unlabelled == 1 and report.kept == 4


def test_unknown_categories_error_or_skip() -> None:
    space = LabelSpace.from_paths(TINY_PATHS)
    rows = [*_rows(), {"title": "x", "category": "Toys > Dolls"}]
    with pytest.raises(ValueError, match="not in taxonomy.*toys > dolls.*on_unknown='skip'"):
        build_dataset(rows, space, COLUMNS, tag_groups=GROUPS)
    dataset, report = build_dataset(rows, space, COLUMNS, tag_groups=GROUPS, on_unknown="skip")
    assert len(dataset) == 4 and report.skipped == 1


def test_infer_tag_groups_and_csv(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "feed.csv"
    pd.DataFrame(_rows()).to_csv(path, index=False)
    groups = infer_tag_groups(pd.read_csv(path).to_dict("records"), {"color": "colour"})
    assert groups == [TagGroup("color", ("Red", "green"))]
    dataset, _ = build_dataset(
        path,
        LabelSpace.from_paths(TINY_PATHS),
        ColumnMap(tags={"color": "colour"}),
        tag_groups=groups,
    )
    assert dataset["labels"][:3] == [2, 1, 6]


def test_collators_build_model_batches(tmp_path: Path, tiny_model_copy) -> None:
    image_path = tmp_path / "red.png"
    Image.new("RGB", (40, 40), "red").save(image_path)
    space = LabelSpace.from_paths(TINY_PATHS)
    dataset, _ = build_dataset(_rows(str(image_path)), space, COLUMNS, tag_groups=GROUPS)
    batch = MultimodalCatCollator(tiny_processor(tmp_path / "tok"))([dataset[i] for i in range(4)])
    assert batch["image_mask"].tolist() == [True, False, False, False]
    assert batch["tag_labels"].shape == (4, 5) and batch["labels"].tolist() == [2, 1, 6, -100]
    model = tiny_model_copy
    assert torch.isfinite(model(**batch).loss)
    rows = [
        {"text_embeds": np.ones(32), "image_embeds": None, "labels": 1},
        {"text_embeds": None, "image_embeds": np.ones(64), "labels": 2},
    ]
    fast = EmbeddingCollator()(rows)
    assert fast["image_mask"].tolist() == [False, True] and fast["text_mask"].tolist() == [
        True,
        False,
    ]
    assert torch.isfinite(model(**fast).loss)
    cached = embedding_dataset([1, 2], text_embeds=np.ones((2, 32)), tag_labels=np.zeros((2, 5)))
    stacked = EmbeddingCollator()([cached[0], cached[1]])
    assert stacked["text_embeds"].shape == (2, 32) and stacked["tag_labels"].shape == (2, 5)


PARENTS = [-1, 0, 1, 1, 0, -1, 5]  # 0 A, 1 A>B, 2 A>B>C, 3 A>B>D, 4 A>E, 5 F, 6 F>G


def test_category_metrics_by_hand() -> None:
    true = np.array([2, 3, 4, 6, 1])  # last row labelled only at "A > B"
    pred = np.array([2, 2, 4, 2, 3])
    levels = per_level_accuracy(pred, true, PARENTS)
    assert levels == {1: 0.8, 2: 0.8, 3: 0.5}
    hp, hr, hf = hierarchical_prf(pred, true, PARENTS)
    # overlaps 3+2+2+0+2 = 9; predicted sets 3+3+2+3+3 = 14; true sets 3+3+2+2+2 = 12
    assert (hp, hr) == pytest.approx((9 / 14, 9 / 12)) and hf == pytest.approx(
        2 * hp * hr / (hp + hr)
    )
    metrics = category_metrics(np.append(pred, 0), np.append(true, -100), PARENTS)
    assert metrics["leaf_accuracy"] == pytest.approx(2 / 4)
    assert metrics["valid_path_rate"] == 1.0
    assert 0 < metrics["leaf_macro_f1"] < 1


def test_tag_metrics_by_hand() -> None:
    groups = [TagGroup("color", ("red", "blue")), TagGroup("material", ("cotton", "leather"), True)]
    logits = np.array([[2.0, 0.0, 3.0, -3.0], [0.0, 1.0, 3.0, 3.0]])
    decisions = tag_predictions(logits, groups)
    assert decisions.tolist() == [[1, 0, 1, 0], [0, 1, 1, 1]]
    labels = np.array([[1, 0, 1, 0], [1, 0, -100, -100]], dtype=float)
    metrics = tag_metrics(decisions, labels)
    # tp: red 1, cotton 1; fp: blue 1; fn: red 1 -> micro 2*2/(4+1+1)
    assert metrics["tag_micro_f1"] == pytest.approx(4 / 6)
    assert metrics["tag_macro_f1"] == pytest.approx((2 / 3 + 0.0 + 1.0) / 3)
