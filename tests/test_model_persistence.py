"""Save / load round trips, Auto classes, processor, and the cached-embeddings fast path."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from transformers import AutoConfig, AutoModel, AutoProcessor, BertModel, Dinov2Model

import multimodal_cat.modeling  # noqa: F401  (registers the Auto classes)
from multimodal_cat.encoders import pool
from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.modeling.processing import render_text
from multimodal_cat.modeling.testing import (
    IMAGE_SIZE,
    tiny_label_space,
    tiny_model,
    tiny_processor,
    tiny_text_config,
    tiny_vision_config,
)
from multimodal_cat.products import Product


def _inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "pixel_values": torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE),
        "input_ids": torch.randint(5, 20, (2, 5)),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
    }


def _comparable(config: dict) -> dict:
    """Config dict without what loading legitimately fills in (source folder, weights dtype)."""
    skip = {"_name_or_path", "dtype"}
    return {
        k: _comparable(v) if isinstance(v, dict) else v for k, v in config.items() if k not in skip
    }


def test_save_load_identical_logits_and_auto_round_trip(tmp_path: Path) -> None:
    model = tiny_model(vision="dinov2", fusion_type="gated")
    model.save_pretrained(tmp_path)
    reloaded = MultimodalCatModel.from_pretrained(tmp_path).eval()
    auto = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(auto, MultimodalCatModel)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), type(model.config))
    with torch.no_grad():
        expected = model(**_inputs())
        for other in (reloaded, auto):
            got = other(**_inputs())
            torch.testing.assert_close(
                got.category_logits, expected.category_logits, rtol=0, atol=0
            )
            torch.testing.assert_close(got.tag_logits, expected.tag_logits, rtol=0, atol=0)
    assert _comparable(reloaded.config.to_dict()) == _comparable(model.config.to_dict())
    assert reloaded.label_space.paths == model.label_space.paths
    assert reloaded.config.tag_group_list == model.config.tag_group_list


def test_from_encoders_towers_match_the_standalone_encoders(tmp_path: Path) -> None:
    BertModel(tiny_text_config()).save_pretrained(tmp_path / "bert")
    Dinov2Model(tiny_vision_config("dinov2")).save_pretrained(tmp_path / "dino")
    model = MultimodalCatModel.from_encoders(
        str(tmp_path / "dino"), str(tmp_path / "bert"), taxonomy=tiny_label_space()
    ).eval()
    bert = AutoModel.from_pretrained(tmp_path / "bert").eval()
    dino = AutoModel.from_pretrained(tmp_path / "dino").eval()
    inputs = _inputs()  # the second row is padded
    with torch.no_grad():
        text = pool(
            bert(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).last_hidden_state,
            inputs["attention_mask"],
            "mean",
        )
        image = pool(dino(pixel_values=inputs["pixel_values"]).last_hidden_state, None, "cls_mean")
        torch.testing.assert_close(
            model.get_text_features(inputs["input_ids"], inputs["attention_mask"]), text
        )
        torch.testing.assert_close(model.get_image_features(inputs["pixel_values"]), image)
    assert model.config.vision_config.model_type == "dinov2"


def test_embeds_fast_path_equals_towers_with_frozen_encoders() -> None:
    model = tiny_model(freeze_encoders=True).train()
    assert not any(p.requires_grad for p in model.vision_model.parameters())
    assert not model.vision_model.training  # frozen towers stay in eval mode
    model.eval()
    inputs = _inputs()
    with torch.no_grad():
        towers = model(**inputs)
        image_embeds = model.get_image_features(inputs["pixel_values"])
        assert image_embeds.shape == (2, 64)
        text_embeds = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        fast = model(image_embeds=image_embeds, text_embeds=text_embeds)
    torch.testing.assert_close(fast.category_logits, towers.category_logits)
    torch.testing.assert_close(fast.tag_logits, towers.tag_logits)
    # Training the head alone on embeddings gives gradients to the head only.
    model.train()
    out = model(image_embeds=image_embeds, text_embeds=text_embeds, labels=torch.tensor([2, 6]))
    out.loss.backward()
    assert model.category_head.classifier.weight.grad is not None


def test_processor_builds_inputs_and_round_trips(tmp_path: Path) -> None:
    processor = tiny_processor(tmp_path / "tok", text_template="{brand}: {title}")
    products = [
        Product(title="red sneakers", brand="nike", image=Image.new("RGB", (40, 50), "red")),
        {"title": "black boots", "description": "leather"},
    ]
    assert processor.texts(products) == ["nike: red sneakers", "black boots"]
    batch = processor(products)
    assert batch["pixel_values"].shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["image_mask"].tolist() == [True, False]
    assert batch["text_mask"].tolist() == [True, True]
    assert (
        batch["input_ids"][0].tolist()[:4]
        == processor.tokenizer("nike: red sneakers")["input_ids"][:4]
    )
    model = tiny_model()
    out = model(**batch)
    assert len(model.decode(out)) == 2
    processor.save_pretrained(tmp_path / "saved")
    model.save_pretrained(tmp_path / "saved")
    again = MultimodalCatProcessor.from_pretrained(tmp_path / "saved")
    assert again.text_template == "{brand}: {title}"
    torch.testing.assert_close(again(products)["input_ids"], batch["input_ids"])
    auto = AutoProcessor.from_pretrained(tmp_path / "saved")
    assert isinstance(auto, MultimodalCatProcessor) and auto.max_length == processor.max_length


def test_text_only_processor_round_trips(tmp_path: Path) -> None:
    processor = MultimodalCatProcessor(None, tiny_processor(tmp_path / "tok").tokenizer)
    processor.save_pretrained(tmp_path / "saved")
    again = MultimodalCatProcessor.from_pretrained(tmp_path / "saved")
    assert again.image_processor is None
    batch = again([Product(title="red boots", image=Image.new("RGB", (8, 8)))])
    assert "pixel_values" not in batch and batch["text_mask"].tolist() == [True]
    model = tiny_model(vision=None)
    assert model.decode(model(**batch))[0].category_path in model.label_space.paths


def test_render_text_drops_empty_fields() -> None:
    template = "{title}. {brand}. {description}"
    assert render_text(template, {"title": "Shoe", "description": "Soft"}) == "Shoe. Soft"
    assert render_text(template, {"brand": "Nike"}) == "Nike"
    assert render_text(template, {}) == ""


class _FakeHub:
    """Stands in for the Hub API (no network here): stores committed files in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create_repo(self, repo_id: str, **kwargs):
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_commit(self, repo_id: str, operations, **kwargs):
        for op in operations:
            target = self.root / repo_id / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(op.path_or_fileobj).read_bytes())


def test_push_to_hub_uploads_a_loadable_checkpoint(tmp_path: Path, monkeypatch) -> None:
    import transformers.utils.hub as hub

    fake = _FakeHub(tmp_path / "hub")
    monkeypatch.setattr(hub, "hf_api", lambda: fake)
    model = tiny_model(vision="dinov2")
    model.push_to_hub("acme/product-categorizer")
    pushed = MultimodalCatModel.from_pretrained(tmp_path / "hub" / "acme/product-categorizer")
    with torch.no_grad():
        expected, got = model(**_inputs()), pushed.eval()(**_inputs())
    torch.testing.assert_close(got.category_logits, expected.category_logits, rtol=0, atol=0)
