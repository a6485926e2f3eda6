"""The product-kind head overrules a best leaf in a branch the product is surely not of."""

from __future__ import annotations

import numpy as np
import pytest

import multimodal_cat.predictors.zero_shot as zero_shot_module
import multimodal_cat.zero_shot.kind as kind_module
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.kind import KIND_FILE, KindHead, load_kind_head, overrule
from tests.test_align_engine import BagOfWordsEncoder

TREE = Taxonomy.from_paths(
    ["Toys & Games > Building Toys", "Toys & Games > Dolls", "Hardware > Masonry > Bricks", "Hardware > Drills"]
)


def _head(encoder: BagOfWordsEncoder) -> KindHead:
    """A head that reads 'lego' as a toy and 'masonry cement' as hardware."""
    rows = encoder.encode(["lego", "masonry cement"])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return KindHead(30.0 * rows, np.zeros(2), ["Toys & Games", "Hardware"], encoder.key, "-")


def test_overrule_needs_a_sure_head_and_a_vetoed_root() -> None:
    head = KindHead(np.zeros((2, 1)), np.zeros(2), ["Toys & Games", "Hardware"], "k", "d")
    groups = {0: np.array([0, 1]), 1: np.array([2, 3])}
    probs = np.array([[0.1, 0.2, 0.6, 0.1]] * 3)
    kinds = np.array([[0.97, 0.03], [0.7, 0.3], [0.9, 0.1]])
    verdicts = overrule(probs, kinds, groups, head)
    assert verdicts[0].column == 1 and verdicts[0].kind == "Toys & Games"  # best leaf under Toys
    assert verdicts[1].column == -1  # the head is not sure enough
    assert verdicts[2].column == -1  # the leaf's own root keeps a real chance (0.10)
    implausible = np.array([[0.01, 0.02, 0.9, 0.07]])  # the engine finds no toy at all
    assert overrule(implausible, kinds[:1], groups, head)[0].column == -1


def test_predictor_moves_lego_out_of_masonry_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = BagOfWordsEncoder()
    plain = ZeroShotCategorizer(TREE, encoder, cache=False, product_kind=False)
    before = plain.predict(["LEGO bricks set"])[0]
    assert before.category_path == "Hardware > Masonry > Bricks"
    monkeypatch.setattr(zero_shot_module, "load_kind_head", lambda enc: _head(encoder))
    monkeypatch.setattr(kind_module, "KIND_PLAUSIBLE", 0.0)  # this toy encoder is too sharp for it
    after = ZeroShotCategorizer(TREE, encoder, cache=False, product_kind=True).predict(["LEGO bricks set"])[0]
    assert after.category_path.startswith("Toys & Games > ")
    assert any("product-kind check" in w and "Hardware > Masonry > Bricks" in w for w in after.warnings)
    # a product the head agrees with is left alone, without a warning
    drill = ZeroShotCategorizer(TREE, encoder, cache=False, product_kind=True).predict(["masonry cement drills"])[0]
    assert not any("product-kind" in w for w in drill.warnings)


def test_the_shipped_head_is_used_only_with_its_encoder() -> None:
    if not KIND_FILE.is_file():
        pytest.skip("no shipped head")
    assert load_kind_head(BagOfWordsEncoder()) is None
