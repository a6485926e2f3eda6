"""Model cards (README.md with the hub's metadata) from ``save_pretrained``, ``push_to_hub`` and
``multimodal-cat train`` (its output folder and every ``checkpoint-*``), and base models recorded
by hub id."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from huggingface_hub import ModelCard

import multimodal_cat.encoders.registry as registry
from multimodal_cat.cli.main import main
from multimodal_cat.modeling import MultimodalCatModel
from multimodal_cat.modeling.card import CARD_MARK, write_model_card
from multimodal_cat.modeling.testing import tiny_model
from tests.test_training_trainer import _feed


def _card(path: Path) -> ModelCard:
    card = ModelCard.load(path)
    assert card.data.library_name == "multimodal-cat"
    return card


def test_save_pretrained_writes_a_card_with_the_runs_metrics(tmp_path: Path) -> None:
    results = {"eval_leaf_accuracy": 0.875, "eval_hierarchical_f1": 0.9, "eval_runtime": 3.0}
    (tmp_path / "all_results.json").write_text(json.dumps(results))
    tiny_model().save_pretrained(tmp_path)
    card = _card(tmp_path / "README.md")
    assert card.data.pipeline_tag == "text-classification"
    assert {"multimodal-cat", "product-categorization", "multimodal"} <= set(card.data.tags)
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"Leaf accuracy": 0.875, "Hierarchical F1": 0.9}
    assert "4 leaf categories" in card.text and "`color` (3 values)" in card.text
    assert 'pipeline("product-categorization"' in card.text
    assert "eval_runtime" not in card.text  # timings are not metrics


def test_an_image_only_card_and_a_foreign_readme(tmp_path: Path) -> None:
    model = tiny_model(text=None, tags=None)
    model.save_pretrained(tmp_path / "a")
    assert _card(tmp_path / "a" / "README.md").data.pipeline_tag == "image-classification"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "README.md").write_text("# my own notes\n")
    assert write_model_card(tmp_path / "b", model.config) is None
    assert (tmp_path / "b" / "README.md").read_text() == "# my own notes\n"


def test_push_to_hub_uploads_the_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: the hub client stores what is committed in a folder."""
    import transformers.utils.hub as hub

    from tests.test_model_persistence import _FakeHub

    monkeypatch.setattr(hub, "hf_api", lambda: _FakeHub(tmp_path / "hub"))
    tiny_model().push_to_hub("shop/tiny-cat", tags=["fashion"])
    pushed = tmp_path / "hub" / "shop" / "tiny-cat"
    assert {"config.json", "README.md"} <= {p.name for p in pushed.iterdir()}
    card = _card(pushed / "README.md")
    assert "fashion" in card.data.tags and 'model="shop/tiny-cat"' in card.text


@pytest.fixture
def short_text_name(monkeypatch: pytest.MonkeyPatch, tiny_text_dir: Path) -> str:
    """A registered short name ("tiny-bert", hub id "someone/tiny-bert") for the tiny BERT."""
    spec = registry.EncoderSpec(
        name="tiny-bert", modality="text", packages=(), pip_names=(),
        locate=lambda cache_dir: tiny_text_dir, hub_id="someone/tiny-bert",
    )
    monkeypatch.setattr(registry, "_REGISTRY", (*registry._REGISTRY, spec))
    return "tiny-bert"


def test_train_writes_cards_in_the_output_and_every_checkpoint(
    tmp_path: Path, short_text_name: str, tiny_text_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    out = tmp_path / "out"
    flags = ["train", "--feed", str(feed), "--eval-feed", str(feed), "--text-encoder", short_text_name]
    flags += ["--freeze-encoders", "--projection-dim", "8", "--fusion-hidden-dim", "8"]
    flags += ["--report_to", "none", "--use_cpu", "--embedding-cache", "none", "--max_steps", "2"]
    flags += ["--save_strategy", "steps", "--save_steps", "1", "--eval_strategy", "steps"]
    assert main([*flags, "--eval_steps", "1", "--output_dir", str(out)]) == 0
    results = json.loads((out / "all_results.json").read_text())
    final = _card(out / "README.md")
    assert final.data.base_model == "someone/tiny-bert"
    shown = {r.metric_name: r.metric_value for r in final.data.eval_results}
    assert shown["Leaf accuracy"] == round(results["eval_leaf_accuracy"], 4)
    kept = sorted(out.glob("checkpoint-*"))  # the recipe keeps the best one (issue 27)
    assert kept
    for checkpoint in kept:
        card = _card(checkpoint / "README.md")
        assert card.data.base_model == "someone/tiny-bert"
        assert "Leaf accuracy" in {r.metric_name for r in card.data.eval_results}
    config = (out / "config.json").read_text()
    assert json.loads(config)["text_config"]["_name_or_path"] == "someone/tiny-bert"
    assert str(tiny_text_dir) not in config and CARD_MARK in (out / "README.md").read_text()
    assert MultimodalCatModel.from_pretrained(out).config.text_config.name_or_path == "someone/tiny-bert"
