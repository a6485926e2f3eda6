"""Issue 27: a photo never makes the answer worse where it cannot vouch, calibration and
thresholds per kind of input, and frozen-encoder checkpoints that hold only the head."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import safe_open

from multimodal_cat.cli.main import main
from multimodal_cat.modeling import MultimodalCatModel
from multimodal_cat.modeling.testing import tiny_model
from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.review.routing import ReviewRouter, stored_router
from multimodal_cat.taxonomy import Taxonomy
from tests.test_training_trainer import _feed


def _inputs(model: MultimodalCatModel, n: int = 6) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "image_embeds": torch.randn(n, model.fusion.projections["image"].norm.normalized_shape[0]) * 3,
        "text_embeds": torch.randn(n, model.config.text_config.hidden_size) * 3,
    }


def _probs(model: MultimodalCatModel, **inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(**inputs).category_logits.float(), -1)


def test_the_photo_cannot_overrule_a_title_naming_a_category_it_has_no_photos_of() -> None:
    model = tiny_model().eval()
    inputs = _inputs(model)
    n = len(inputs["text_embeds"])
    text_alone = _probs(model, **inputs, image_mask=torch.zeros(n, dtype=torch.bool))
    fused = _probs(model, **inputs)  # no photo counts (an older checkpoint): the fused answer
    assert not torch.allclose(fused, text_alone)
    leaves = len(model.label_space.leaves)
    model.config.leaf_photo_counts = [0] * leaves  # no training photo of any category
    assert torch.allclose(_probs(model, **inputs), text_alone, atol=1e-5)
    model.config.leaf_photo_counts = [1000] * leaves  # photos of every category: fused again
    assert torch.allclose(_probs(model, **inputs), fused, atol=1e-5)
    model.config.photo_weight = 0.25  # a pool of the two opinions, each weighed by its confidence
    a = 0.25 * fused.max(-1, keepdim=True).values
    b = 0.75 * text_alone.max(-1, keepdim=True).values
    assert torch.allclose(_probs(model, **inputs), (a * fused + b * text_alone) / (a + b), atol=1e-5)
    # only the text's category lacks photos: that row answers from the text alone
    model.config.photo_weight = 1.0
    scarce = int(text_alone[0].argmax())
    model.config.leaf_photo_counts = [0 if i == scarce else 1000 for i in range(leaves)]
    out = _probs(model, **inputs)
    assert torch.allclose(out[0], text_alone[0], atol=1e-5)
    assert all(int(out[r].argmax()) != scarce or int(text_alone[r].argmax()) == scarce for r in range(n))


def test_rows_with_one_input_and_training_are_untouched_by_the_trust_rule() -> None:
    model = tiny_model().eval()
    inputs = _inputs(model)
    n = len(inputs["text_embeds"])
    only_image = {**inputs, "text_mask": torch.zeros(n, dtype=torch.bool)}
    before = _probs(model, **only_image)
    model.config.leaf_photo_counts = [0] * len(model.label_space.leaves)
    assert torch.allclose(_probs(model, **only_image), before)
    model.train()
    torch.manual_seed(1)
    model.config.dropout = 0.0
    labels = torch.tensor([1, 2, 3, 4, 5, 6])
    loss = model(**inputs, labels=labels).loss
    assert loss is not None and torch.isfinite(loss)


def test_each_kind_of_input_has_its_own_temperature_and_thresholds(tmp_path: Path) -> None:
    model = tiny_model().eval()
    inputs = _inputs(model, n=4)
    image_mask = torch.tensor([True, True, False, True])
    text_mask = torch.tensor([True, False, True, False])
    model.config.category_temperatures_by_input = {"image": 5.0, "text": 0.5}
    with torch.no_grad():
        out = model(**inputs, image_mask=image_mask, text_mask=text_mask)
    probs = model.calibrated_leaf_probs(out)
    logits = out.category_logits.float()
    assert torch.allclose(probs[1], torch.softmax(logits[1] / 5.0, -1), atol=1e-6)
    assert torch.allclose(probs[2], torch.softmax(logits[2] / 0.5, -1), atol=1e-6)
    assert torch.allclose(probs[0], torch.softmax(logits[0], -1), atol=1e-6)  # shared: 1.0
    decoded = model.decode(out)
    assert decoded[1].confidence == pytest.approx(float(probs[1].max()), abs=1e-5)
    model.config.confidence_thresholds_by_input = {"text+image": {"0.98": 0.9}}
    model.save_pretrained(tmp_path / "m")
    again = MultimodalCatModel.from_pretrained(tmp_path / "m").config
    assert again.temperature_for("image") == 5.0
    assert again.thresholds_for("text+image") == {"0.98": 0.9}
    with pytest.raises(ValueError, match="input kinds"):
        type(again)(category_temperatures_by_input={"photo": 2.0})


def test_review_routing_holds_each_product_to_its_input_kinds_threshold() -> None:
    tree = Taxonomy.from_paths(["Toys > Dolls"])
    router = ReviewRouter(tree, 0.9, by_input={"image": 0.99})
    sure = Prediction("Toys > Dolls", "Toys > Dolls", 0.95)
    sure.inputs = "image"
    assert router(Product(), sure)[0] is True
    sure.inputs = "text"
    assert router(Product(), sure)[0] is False

    class Predictor:
        taxonomy = tree
        model = type("M", (), {"config": type("C", (), {"confidence_thresholds": {"0.98": 0.9}})()})()

        def thresholds_by_input(self, key: str) -> dict[str, float]:
            return {"image": 0.99} if key == "0.98" else {}

    assert stored_router(Predictor(), 0.98).by_input == {"image": 0.99}


def test_training_stores_photo_counts_and_per_input_calibration(
    tmp_path: Path, tiny_encoders: tuple[str, str]
) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    rows = _feed(tmp_path, n=64)
    pd.DataFrame(rows).to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--eval-feed", str(feed), "--text-encoder", text]
    flags += ["--vision-encoder", vision, "--freeze-encoders", "--use_cpu", "--report_to", "none"]
    flags += ["--embedding-cache", "none", "--num_train_epochs", "2", "--projection-dim", "8"]
    flags += ["--fusion-hidden-dim", "8", "--save_strategy", "no"]
    assert main([*flags, "--output_dir", str(tmp_path / "m")]) == 0
    model = MultimodalCatModel.from_pretrained(tmp_path / "m")
    config = model.config
    space = model.label_space
    expected = [
        sum(1 for r in rows if r["image"] and space.node_index(r["category"]) == leaf)
        for leaf in space.leaves
    ]
    assert config.leaf_photo_counts == expected
    assert set(config.confidence_thresholds_by_input) == {"text+image", "text", "image"}
    assert set(config.category_temperatures_by_input) == {"text+image", "text", "image"}
    for stored in config.confidence_thresholds_by_input.values():
        assert set(stored) == {"0.95", "0.98", "0.99"}
    metrics = json.loads((tmp_path / "m" / "all_results.json").read_text())
    assert metrics["calibration_rows_image"] == sum(1 for r in rows if r["image"])


def test_frozen_encoder_checkpoints_hold_the_head_only_and_keep_the_best(
    tmp_path: Path, tiny_encoders: tuple[str, str]
) -> None:
    from multimodal_cat.categorizer import Categorizer

    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path, n=24)).to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--eval-split", "0.25", "--text-encoder", text]
    flags += ["--vision-encoder", vision, "--freeze-encoders", "--use_cpu", "--report_to", "none"]
    flags += ["--embedding-cache", "none", "--num_train_epochs", "3", "--projection-dim", "8"]
    flags += ["--fusion-hidden-dim", "8", "--per_device_train_batch_size", "8"]
    out = tmp_path / "m"
    assert main([*flags, "--output_dir", str(out)]) == 0
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1  # the best one, by the evaluation loss
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"].endswith(checkpoints[0].name)
    with safe_open(str(checkpoints[0] / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert names and not any(n.startswith(("vision_model.", "text_model.")) for n in names)
    final = MultimodalCatModel.from_pretrained(out)
    loaded, info = MultimodalCatModel.from_pretrained(checkpoints[0], output_loading_info=True)
    assert not info["missing_keys"] and not loaded.config.towers_referenced
    for ours, theirs in ((loaded.vision_model, final.vision_model), (loaded.text_model, final.text_model)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    size = sum(p.stat().st_size for p in checkpoints[0].rglob("*") if p.is_file())
    assert size < (out / "model.safetensors").stat().st_size
    best = Categorizer.from_pretrained(str(checkpoints[0])).predict([{"title": "red boots"}])[0]
    assert best.category_path in final.label_space.paths


def test_text_only_tags_decided_beforehand_replace_the_gate(
    tmp_path: Path, tiny_encoders: tuple[str, str], capsys
) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path, n=12)).to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--eval-feed", str(feed), "--text-encoder", text]
    flags += ["--vision-encoder", vision, "--freeze-encoders", "--use_cpu", "--report_to", "none"]
    flags += ["--embedding-cache", "none", "--max_steps", "1", "--tag-column", "colour"]
    flags += ["--save_strategy", "no", "--eval_strategy", "no"]
    assert main([*flags, "--text-only-tags", "colour", "--output_dir", str(tmp_path / "m")]) == 0
    assert MultimodalCatModel.from_pretrained(tmp_path / "m").config.text_only_tag_groups == ["colour"]
    metrics = json.loads((tmp_path / "m" / "all_results.json").read_text())
    assert not any(k.startswith("tag_colour_accuracy") for k in metrics)  # no gate was run
    assert main([*flags, "--text-only-tags", "season", "--output_dir", str(tmp_path / "x")]) == 2
    assert "--text-only-tags names season" in capsys.readouterr().err
