"""Shapes, losses, missing modalities, fusion types and decoding of MultimodalCatModel."""

from __future__ import annotations

import pytest
import torch

from multimodal_cat.modeling import LabelSpace, MultimodalCatConfig, MultimodalCatModel
from multimodal_cat.modeling.testing import IMAGE_SIZE, TINY_PATHS, tiny_config, tiny_model

BATCH = 3


def _inputs(batch: int = BATCH, seq: int = 6) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "pixel_values": torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE),
        "input_ids": torch.randint(5, 20, (batch, seq)),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long),
    }


def _tag_labels(batch: int = BATCH) -> torch.Tensor:
    labels = torch.full((batch, 5), -100.0)
    labels[0, :3] = torch.tensor([1.0, 0.0, 0.0])  # colour red
    labels[1, 3:] = torch.tensor([1.0, 1.0])  # cotton and leather
    return labels


@pytest.mark.parametrize("fusion", ["concat", "gated"])
def test_forward_shapes_and_loss_only_with_labels(fusion: str) -> None:
    model = tiny_model(fusion_type=fusion)
    out = model(**_inputs())
    assert out.loss is None
    assert out.category_logits.shape == (BATCH, len(model.label_space.leaves))
    assert out.node_log_probs.shape == (BATCH, 7)
    assert out.tag_logits.shape == (BATCH, 5)
    assert out.image_embeds.shape == (BATCH, 64)  # cls_mean pooling: CLS + mean of patches
    assert out.text_embeds.shape == (BATCH, 32)
    assert out.fused_embeds.shape == (BATCH, 24)
    with_labels = model(**_inputs(), labels=torch.tensor([2, 3, -100]), tag_labels=_tag_labels())
    assert with_labels.loss is not None and torch.isfinite(with_labels.loss)


def test_node_probabilities_sum_over_subtrees(tiny_model_copy) -> None:
    model = tiny_model_copy
    probs = model(**_inputs()).node_log_probs.exp()
    space = model.label_space
    for node in range(len(space)):
        children = [i for i, p in enumerate(space.parents) if p == node]
        if children:
            torch.testing.assert_close(probs[:, node], probs[:, children].sum(-1))
    roots = [i for i, p in enumerate(space.parents) if p < 0]
    torch.testing.assert_close(probs[:, roots].sum(-1), torch.ones(BATCH))


def test_coarse_labels_train_the_head(tiny_model_copy) -> None:
    model = tiny_model_copy.train()
    space = model.label_space
    coarse = torch.tensor([space.node_index("Apparel > Shoes"), space.node_index("Apparel")] * 2)
    out = model(**_inputs(4), labels=coarse)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grad = model.category_head.classifier.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # The gradient flows only to leaves' logits through their subtree sums: loss is finite
    # and decreases when the labelled subtree gains mass.
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    embeds = {"image_embeds": out.image_embeds.detach(), "text_embeds": out.text_embeds.detach()}
    before = model(**embeds, labels=coarse).loss.item()
    for _ in range(5):
        opt.zero_grad()
        loss = model(**embeds, labels=coarse).loss
        loss.backward()
        opt.step()
    assert loss.item() < before


def test_missing_image_or_text_per_row() -> None:
    model = tiny_model()
    inputs = _inputs()
    out = model(**inputs, image_mask=torch.tensor([1, 0, 1]), text_mask=torch.tensor([1, 1, 0]))
    assert torch.isfinite(out.node_log_probs).all()
    # A row without an image does not depend on its pixels.
    changed = dict(inputs, pixel_values=inputs["pixel_values"].clone())
    changed["pixel_values"][:2] += 5.0
    again = model(**changed, image_mask=torch.tensor([1, 0, 1]), text_mask=torch.tensor([1, 1, 0]))
    torch.testing.assert_close(out.category_logits[1], again.category_logits[1])
    assert not torch.allclose(out.category_logits[0], again.category_logits[0])
    # Whole modality absent from the batch.
    text_only = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    image_only = model(pixel_values=inputs["pixel_values"])
    assert text_only.image_embeds is None and image_only.text_embeds is None
    assert text_only.category_logits.shape == image_only.category_logits.shape


@pytest.mark.parametrize(("vision", "text"), [("dinov2", None), (None, "bert")])
def test_single_tower_models(vision: str | None, text: str | None) -> None:
    model = tiny_model(vision=vision, text=text)
    inputs = _inputs()
    if vision is None:
        inputs.pop("pixel_values")
    if text is None:
        inputs.pop("input_ids"), inputs.pop("attention_mask")
    out = model(**inputs, labels=torch.tensor([2, 3, 6]))
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="no (image|text) tower"):
        model(**_inputs())


def test_modality_dropout_and_label_smoothing_train() -> None:
    model = tiny_model(fusion_type="gated", modality_dropout=0.5, label_smoothing=0.1).train()
    out = model(**_inputs(), labels=torch.tensor([2, 3, 6]), tag_labels=_tag_labels())
    out.loss.backward()
    assert model.fusion.projections["image"].missing.grad is not None


def test_decoded_paths_always_exist() -> None:
    model = tiny_model()
    space = model.label_space
    out = model(**_inputs())
    leaf_ids = {space.ids[i] for i in space.leaves}
    for prediction in model.decode(out, top_k=3):
        assert prediction.category_id in leaf_ids
        assert prediction.category_path == space.paths[space.node_index(prediction.category_id)]
        assert len(prediction.alternatives) == 3
        assert prediction.alternatives[0].id == prediction.category_id
        assert {t.attribute for t in prediction.tags} >= {"color"}
    for prediction in model.decode(out, min_confidence=0.99):
        assert prediction.category_path in space.paths
        assert prediction.confidence >= 0.99 or prediction.warnings
    for prediction in model.decode(out, min_confidence=0.0):
        assert prediction.category_id in leaf_ids


def test_embeddings_may_be_raw_or_normalized() -> None:
    model = tiny_model()
    embeds = torch.randn(BATCH, 32) * 7
    raw = model(text_embeds=embeds)
    unit = model(text_embeds=torch.nn.functional.normalize(embeds, dim=-1))
    torch.testing.assert_close(raw.category_logits, unit.category_logits, atol=1e-3, rtol=1e-3)


def test_class_weights_and_config_errors() -> None:
    config = tiny_config(class_weights=[1.0] * 7)
    model = MultimodalCatModel(config)
    assert torch.isfinite(model(**_inputs(), labels=torch.tensor([2, 3, 6])).loss)
    with pytest.raises(ValueError, match="class_weights"):
        tiny_config(class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="at least one tower"):
        MultimodalCatConfig.from_vision_text_configs(None, None)
    with pytest.raises(ValueError, match="model_type"):
        MultimodalCatConfig(vision_config={"hidden_size": 32})
    with pytest.raises(ValueError, match="fusion_type"):
        tiny_config(fusion_type="sum")
    with pytest.raises(ValueError, match=r"image_embeds must have shape \(2, 64\).*'cls_mean'"):
        tiny_model()(image_embeds=torch.zeros(2, 32))
    with pytest.raises(ValueError, match="node indices"):
        tiny_model()(**_inputs(), labels=torch.tensor([0, 1, 99]))


def test_label_space_lookup() -> None:
    space = LabelSpace.from_paths(["A > B > C", "A > D"], ids=["c1", "d1"])
    assert space.ids == ["A", "A > B", "c1", "d1"]
    assert space.node_index("c1") == 2
    assert space.node_index("a >  b") == 1
    assert space.ancestors(2) == [0, 1, 2]
    with pytest.raises(KeyError, match="Unknown category"):
        space.node_index("Z")


def test_label_space_from_taxonomy_and_model_config() -> None:
    from multimodal_cat.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_paths(TINY_PATHS, name="tiny-tax")
    space = LabelSpace.from_taxonomy(taxonomy)
    assert space.taxonomy_name == "tiny-tax"
    assert set(space.paths) == {c.full_path for c in taxonomy}
    model = tiny_model(labels=taxonomy)
    assert model.config.taxonomy_name == "tiny-tax"
    assert model.label_space.paths == space.paths
