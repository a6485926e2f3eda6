"""Review formats without a server: labeling config, tasks, export parsing, corrections, suggest."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from multimodal_cat.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
    softmax,
    threshold_for_precision,
)
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.products import Product
from multimodal_cat.review import (
    Correction,
    CorrectionError,
    apply_corrections,
    labeling_config,
    read_corrections,
    read_export,
    reviewed_ids,
    suggest,
    to_tasks,
    write_corrections,
)
from multimodal_cat.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(
    ["Toys > Construction Sets", "Toys > Dolls", "Hardware > Masonry > Bricks"],
    ids=["t-1", "t-2", "h-1-1"],
    name="tiny",
)


def _prediction(category_id: str, confidence: float) -> Prediction:
    category = TREE[category_id]
    others = [CategoryScore(c.id, c.full_path, 0.1) for c in TREE.leaves() if c.id != category_id]
    return Prediction(
        category_id,
        category.full_path,
        confidence,
        alternatives=[CategoryScore(category_id, category.full_path, confidence), *others],
    )


def test_labeling_config_nests_the_whole_tree():
    root = ET.fromstring(labeling_config(TREE))
    control = root.find("Taxonomy")
    assert control is not None and control.get("maxUsages") == "1"
    toys = [c for c in control if c.get("value") == "Toys"][0]
    assert sorted(c.get("value") for c in toys) == ["Construction Sets", "Dolls"]
    bricks = control.find("Choice[@value='Hardware']/Choice[@value='Masonry']/Choice")
    assert bricks is not None and bricks.get("value") == "Bricks"
    assert root.find("Image") is not None
    assert ET.fromstring(labeling_config(TREE, images=False)).find("Image") is None


def test_tasks_prefill_the_best_guess_with_its_score():
    products = [Product(id="p1", title="LEGO Classic Bricks", image_ref="https://x/1.jpg")]
    task = to_tasks(products, [_prediction("t-1", 0.62)], reasons=["low confidence"])[0]
    assert task["data"]["id"] == "p1" and task["data"]["image"] == "https://x/1.jpg"
    assert task["data"]["reason"] == "low confidence"
    assert task["data"]["candidates"].startswith("1. Toys > Construction Sets (0.62)")
    result = task["predictions"][0]["result"][0]
    assert result["value"] == {"taxonomy": [["Toys", "Construction Sets"]]}
    assert result["score"] == pytest.approx(0.62)
    with pytest.raises(ValueError, match="one prediction per product"):
        to_tasks(products, [])


def _exported(product_id, suggested, path, *, cancelled=False, updated="2026-12-01T10:00:00Z"):
    result = [] if path is None else [
        {"from_name": "category", "to_name": "title", "type": "taxonomy", "value": {"taxonomy": [path]}}
    ]
    annotation = {"id": 1, "result": result, "was_cancelled": cancelled, "updated_at": updated}
    return {"id": 9, "data": {"id": product_id, "suggested_id": suggested}, "annotations": [annotation]}


def test_export_reads_accepted_changed_skipped_and_ignores_unreviewed():
    export = [
        _exported("p1", "t-1", ["Toys", "Construction Sets"]),
        _exported("p2", "h-1-1", ["toys", "construction  sets"]),
        _exported("p3", "t-2", None, cancelled=True),
        {"id": 12, "data": {"id": "p4", "suggested_id": "t-1"}, "annotations": []},
    ]
    got = {c.product_id: (c.action, c.category_id) for c in read_export(export, TREE)}
    assert got == {"p1": ("accepted", "t-1"), "p2": ("changed", "t-1"), "p3": ("skipped", "")}


def test_export_latest_annotation_wins():
    task = _exported("p1", "t-1", ["Toys", "Dolls"], updated="2026-12-02T00:00:00Z")
    task["annotations"].append(_exported("p1", "t-1", ["Toys", "Construction Sets"])["annotations"][0])
    assert read_export([task], TREE)[0].category_id == "t-2"


def test_export_with_a_category_not_in_the_tree_is_a_clear_error(tmp_path):
    export = [_exported("p1", "t-1", ["Toys", "Rockets"]), _exported("p2", "t-1", ["Toys", "Dolls"])]
    with pytest.raises(CorrectionError, match=r"1 task.*'Toys > Rockets'"):
        read_export(export, TREE)
    bad = tmp_path / "export.json"
    bad.write_text("{not json")
    with pytest.raises(CorrectionError, match="invalid JSON at line 1"):
        read_export(bad, TREE)
    with pytest.raises(CorrectionError, match="list of tasks; found dict"):
        read_export({"tasks": []}, TREE)  # type: ignore[arg-type]


def test_corrections_round_trip_and_latest_wins(tmp_path):
    path = tmp_path / "corrections.jsonl"
    write_corrections([Correction("p1", "changed", "t-2", "t-1")], path)
    write_corrections([Correction("p1", "accepted", "t-1", "t-1"), Correction("p2", "skipped")], path)
    got = {c.product_id: c for c in read_corrections(path)}
    assert got["p1"].action == "accepted" and got["p2"].label is None
    assert reviewed_ids(got.values()) == {"p1", "p2"}
    rows = apply_corrections([{"id": "p1", "category": "h-1-1", "sub": "x"}, {"id": "p2", "category": "t-2"}],
                             got.values(), label_columns=("category", "sub"))
    assert rows == [{"id": "p1", "category": "t-1", "sub": ""}, {"id": "p2", "category": "t-2"}]
    path.write_text(json.dumps({"product_id": "p9", "action": "deleted"}) + "\n")
    with pytest.raises(CorrectionError, match="line 1: expected an action"):
        read_corrections(path)


def test_suggest_prefers_uncertain_and_spreads_over_space_and_categories():
    rng = np.random.default_rng(0)
    proba = np.full((40, 4), 0.01)
    proba[np.arange(40), rng.integers(0, 4, 40)] = 0.97
    proba[:10] = [0.4, 0.3, 0.2, 0.1]  # ten uncertain near-duplicates, all predicted category 0
    proba[10:12] = [0.1, 0.45, 0.35, 0.1]  # two uncertain, elsewhere, category 1
    vectors = rng.normal(size=(40, 8))
    vectors[:10] = vectors[0] + 0.01 * rng.normal(size=(10, 8))
    picks = suggest(proba, vectors, 3).tolist()
    assert sum(p < 10 for p in picks) == 1 and {10, 11} <= set(picks)
    excluded = np.zeros(40, dtype=bool)
    excluded[:12] = True
    assert not set(suggest(proba, vectors, 5, exclude=excluded).tolist()) & set(range(12))
    assert len(suggest(proba, vectors, 100)) == 40
    with pytest.raises(ValueError, match="one embedding per row"):
        suggest(proba, vectors[:3], 2)


def test_temperature_scaling_lowers_ece_of_overconfident_scores(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 2000)
    logits = rng.normal(size=(2000, 5))
    logits[np.arange(2000), labels] += 1.0
    logits *= 4.0  # over-confident
    correct = logits.argmax(1) == labels
    before = expected_calibration_error(softmax(logits).max(1), correct)
    t = fit_temperature(logits, labels)
    after = expected_calibration_error(softmax(logits, t).max(1), correct)
    assert t > 2.0 and after < before / 2
    png = reliability_diagram(softmax(logits).max(1), correct, tmp_path / "r.png",
                              others={"calibrated": (softmax(logits, t).max(1), correct)})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="labels must lie"):
        fit_temperature(logits, labels + 5)


def test_threshold_for_precision_accepts_ties_together_and_can_accept_nothing():
    conf = np.array([0.9, 0.9, 0.8, 0.7])
    t = threshold_for_precision(conf, np.array([True, False, True, True]), 0.5)
    assert (t.value, t.share) == (0.7, 1.0)
    none = threshold_for_precision(conf, np.array([False, True, True, True]), 0.99)
    assert none.share == 0.0 and none.value > 0.9
