"""Two Trainer steps (towers path and cached-embeddings path) and the ``train`` command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import TrainOutput

from multimodal_cat.cli.main import main
from multimodal_cat.feeds.columns import ColumnMap
from multimodal_cat.modeling import MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.modeling.testing import (
    tiny_model,
    tiny_processor,
)
from multimodal_cat.products import Product
from multimodal_cat.training import (
    EmbeddingCollator,
    MultimodalCatCollator,
    build_compute_metrics,
    build_dataset,
    embedding_dataset,
)

COLOURS = ["red", "blue", "black"]


def _feed(tmp_path: Path, n: int = 8) -> list[dict]:
    paths = [
        "Apparel > Shoes > Sneakers",
        "Apparel > Shoes > Boots",
        "Apparel > Shirts",
        "Home > Kitchen",
    ]
    words = ["sneakers", "boots", "shirt", "pan"]
    rows = []
    for i in range(n):
        image = tmp_path / f"{i}.png"
        Image.new("RGB", (36, 36), COLOURS[i % 3]).save(image)
        rows.append(
            {
                "title": f"{COLOURS[i % 3]} {words[i % 4]}",
                "category": paths[i % 4] if i != 5 else "Apparel > Shoes",  # one coarse label
                "colour": COLOURS[i % 3],
                "image": str(image) if i != 3 else "",  # one row without image
            }
        )
    return rows


def _args(tmp_path: Path, **kwargs) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
        **kwargs,
    )


def test_trainer_two_steps_on_towers(tmp_path: Path) -> None:
    model = tiny_model(tags={"color": COLOURS}, multi_valued_tags=())
    dataset, _ = build_dataset(
        _feed(tmp_path),
        model.label_space,
        ColumnMap(tags={"color": "colour"}),
        tag_groups=model.config.tag_group_list,
    )
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, remove_unused_columns=False),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=MultimodalCatCollator(tiny_processor(tmp_path / "tok")),
        compute_metrics=build_compute_metrics(
            model.config.category_parents, model.config.tag_group_list
        ),
    )
    before = model.category_head.classifier.weight.detach().clone()
    result = trainer.train()
    assert np.isfinite(result.training_loss)
    assert not torch.equal(before, model.category_head.classifier.weight)
    metrics = trainer.evaluate()
    assert metrics["eval_valid_path_rate"] == 1.0
    assert {
        "eval_leaf_accuracy",
        "eval_hierarchical_f1",
        "eval_tag_micro_f1",
        "eval_level1_accuracy",
    } <= set(metrics)


def test_trainer_two_steps_on_cached_embeddings(tmp_path: Path) -> None:
    model = tiny_model(freeze_encoders=True)
    rng = np.random.default_rng(0)
    dataset = embedding_dataset(
        [2, 3, 5, 6, 1, 2, 3, 6],
        image_embeds=rng.normal(size=(8, 64)),  # cls_mean: 2 x hidden
        text_embeds=rng.normal(size=(8, 32)),
        image_mask=[1, 1, 0, 1, 1, 1, 1, 1],
        tag_labels=np.full((8, 5), -100.0),
    )
    trainer = Trainer(
        model=model, args=_args(tmp_path), train_dataset=dataset, data_collator=EmbeddingCollator()
    )
    tower_before = next(model.text_model.parameters()).detach().clone()
    assert np.isfinite(trainer.train().training_loss)
    assert torch.equal(tower_before, next(model.text_model.parameters()))


def test_train_cli_on_tiny_csv(tmp_path: Path, tiny_encoders: tuple[str, str], capsys) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)
    out = tmp_path / "model"
    code = main(
        [
            "train",
            "--feed",
            str(feed),
            "--eval-feed",
            str(feed),
            "--text-encoder",
            text,
            "--vision-encoder",
            vision,
            "--tag-column",
            "color=colour",
            "--class-weights",
            "balanced",
            "--fusion",
            "gated",
            "--projection-dim",
            "16",
            "--fusion-hidden-dim",
            "24",
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--report_to",
            "none",
            "--use_cpu",
            "--save_strategy",
            "no",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.rindex("{\n") :])["eval_valid_path_rate"] == 1.0
    model = MultimodalCatModel.from_pretrained(out)
    processor = MultimodalCatProcessor.from_pretrained(out)
    assert model.config.fusion_type == "gated" and model.config.class_weights is not None
    assert model.config.tag_group_list[0].values == ("black", "blue", "red")
    batch = processor([{"title": "red boots", "image": Image.new("RGB", (36, 36), "red")}])
    prediction = model.eval().decode(model(**batch))[0]
    assert prediction.category_path in model.label_space.paths


def test_embed_dataset_matches_the_towers(tmp_path: Path) -> None:
    from multimodal_cat.encoders import EmbeddingCache
    from multimodal_cat.training.cached import embed_dataset

    model, processor = tiny_model(freeze_encoders=True), tiny_processor(tmp_path / "tok")
    dataset, _ = build_dataset(_feed(tmp_path), model.label_space, ColumnMap(image="image"))
    cache = EmbeddingCache(tmp_path / "cache")
    embedded = embed_dataset(dataset, model, processor, cache=cache, progress=False)
    assert len(embedded) == len(dataset) == 8
    assert embedded.columns["image_mask"].tolist() == [i != 3 for i in range(8)]
    batch = MultimodalCatCollator(processor)([dataset[i] for i in range(8)])
    with torch.no_grad():
        towers = model(**batch)
        cached = model(**EmbeddingCollator()([embedded[i] for i in range(8)]))
    torch.testing.assert_close(cached.category_logits, towers.category_logits)
    # 8 distinct texts and 3 distinct images (one per colour) stored; the second pass reads them all back and stores nothing new.
    assert cache.count() == 11 and len(cache.encoder_keys()) == 2
    again = embed_dataset(dataset, model, processor, cache=cache, progress=False)
    torch.testing.assert_close(again.columns["text_embeds"], embedded.columns["text_embeds"])
    assert cache.count() == 11


def test_embed_dataset_keeps_rows_with_neither_text_nor_image(tmp_path: Path) -> None:
    from multimodal_cat.predictors.checkpoint import TowerEmbedder
    from multimodal_cat.training.cached import embed_dataset

    model, processor = tiny_model(freeze_encoders=True), tiny_processor(tmp_path / "tok")
    rows = _feed(tmp_path)
    rows[3]["title"] = ""  # row 3 has no image either
    dataset, _ = build_dataset(rows, model.label_space, ColumnMap(image="image"))
    embedded = embed_dataset(dataset, model, processor, chunk_size=1, progress=False)
    assert len(embedded) == 8
    assert not embedded.columns["text_mask"][3] and not embedded.columns["image_mask"][3]
    assert not embedded.columns["text_embeds"][3].any()
    blank = [Product(title="")]
    with pytest.raises(ValueError, match="lacks both text and image"):
        TowerEmbedder(model, processor).embed(blank)


def test_train_cli_frozen_encoders_use_the_embedding_cache(
    tmp_path: Path, tiny_encoders: tuple[str, str], capsys
) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)
    cache = tmp_path / "cache"
    flags = ["--text-encoder", text, "--vision-encoder", vision, "--freeze-encoders"]
    flags += ["--projection-dim", "16", "--fusion-hidden-dim", "24", "--max_steps", "3"]
    flags += ["--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu"]
    flags += ["--save_strategy", "no", "--embedding-cache", str(cache)]
    out = tmp_path / "model"
    code = main(
        ["train", "--feed", str(feed), "--eval-feed", str(feed), "--output_dir", str(out)] + flags
    )
    assert code == 0
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.rindex("{\n") :])
    assert metrics["eval_valid_path_rate"] == 1.0 and metrics["train_runtime"] > 0
    assert json.loads((out / "all_results.json").read_text()) == metrics
    from multimodal_cat.encoders import EmbeddingCache

    # 8 distinct texts + 3 distinct images + the 3 first title words of the weak-text views
    assert EmbeddingCache(cache).count() == 14
    model = MultimodalCatModel.from_pretrained(out)  # the full model, towers included
    assert model.vision_model is not None and model.config.freeze_encoders


def test_train_cli_user_errors(tmp_path: Path, capsys) -> None:
    feed = tmp_path / "feed.csv"
    pd.DataFrame([{"title": "x", "category": "A > B"}]).to_csv(feed, index=False)
    assert (
        main(["train", "--feed", str(tmp_path / "missing.csv"), "--output_dir", str(tmp_path)]) == 2
    )
    assert (
        main(
            [
                "train",
                "--feed",
                str(feed),
                "--category-column",
                "cat",
                "--output_dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "not in the feed" in capsys.readouterr().err
    assert (
        main(["train", "--feed", str(feed), "--bogus_flag", "1", "--output_dir", str(tmp_path)])
        == 2
    )
    flags = ["train", "--feed", str(feed), "--vision-encoder", "dinov2-small"]
    assert main([*flags, "--output_dir", str(tmp_path)]) == 2  # fails before loading weights
    assert "the feed has no image column 'image' (its columns: category, title)" in (
        capsys.readouterr().err
    )


def _record_then_train(monkeypatch, look: Callable[[Any], Any]) -> list[Any]:
    """Make ``Trainer.train`` record ``look(train_dataset)`` on each call, then train as usual."""
    seen: list[Any] = []
    real_train = Trainer.train

    def spy(self, *args, **kwargs):
        seen.append(look(self.train_dataset))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", spy)
    return seen


def test_train_cli_repeats_imaged_rows(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch, capsys
) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)  # 8 rows, row 3 without image
    seen = _record_then_train(monkeypatch, len)
    flags = ["--feed", str(feed), "--text-encoder", text, "--freeze-encoders"]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--max_steps", "1"]
    flags += ["--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    views = ["--image-only-views", "0", "--weak-text-views", "0"]
    flags += ["--embedding-cache", "none", "--imaged-row-repeats", "3"]
    out = ["--output_dir", str(tmp_path / "model")]
    assert main(["train", *flags, *views, "--vision-encoder", vision, *out]) == 0
    assert seen == [8 + 7 * 2]
    assert main(["train", *flags, *out]) == 2  # no vision encoder: nothing reads the images
    assert "--imaged-row-repeats needs --vision-encoder" in capsys.readouterr().err
    flags[-1] = "0"
    assert main(["train", *flags, "--vision-encoder", vision, *out]) == 2
    assert "--imaged-row-repeats must be 1 or more; got 0" in capsys.readouterr().err


def test_train_cli_adds_image_only_and_weak_text_views(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch, capsys
) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)  # 8 rows, row 3 without image
    seen = _record_then_train(
        monkeypatch, lambda data: list(data["title"]) if "title" in data.column_names else data.columns
    )
    flags = ["--feed", str(feed), "--text-encoder", text, "--vision-encoder", vision]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--max_steps", "1"]
    flags += ["--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    flags += ["--output_dir", str(tmp_path / "model")]
    assert main(["train", *flags, "--freeze-encoders", "--embedding-cache", "none"]) == 0
    columns = seen[-1]  # the frozen-head recipe: one image-only and one weak-text view
    assert len(columns["labels"]) == 8 + 7 + 7
    assert columns["text_mask"][8:15].sum() == 0 and columns["image_mask"][8:].all()
    assert "image-only-views=1, weak-text-views=1" in capsys.readouterr().err
    assert main(["train", *flags, "--weak-text-views", "2"]) == 0  # end to end: none unless asked
    titles = seen[-1]
    assert titles[8:] == [t.split()[0] for i, t in enumerate(titles[:8]) if i != 3] * 2
    assert main(["train", *flags, "--weak-text-views", "-1"]) == 2
    assert "--weak-text-views must be 0 or more; got -1" in capsys.readouterr().err


def test_train_cli_frozen_head_recipe_and_overrides(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch, capsys
) -> None:
    """--freeze-encoders trains with the head recipe; flags the user gives win over it."""
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    seen: list[tuple[TrainingArguments, object]] = []

    def spy(self, *args, **kwargs):
        seen.append((self.args, self.model.config))
        return TrainOutput(global_step=0, training_loss=0.0, metrics={"train_runtime": 0.0})

    monkeypatch.setattr(Trainer, "train", spy)
    monkeypatch.setattr(Trainer, "save_model", lambda self, *a, **k: None)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--use_cpu"]
    flags += ["--report_to", "none", "--embedding-cache", "none"]
    out = ["--output_dir", str(tmp_path / "model")]
    assert main([*flags, "--freeze-encoders", *out]) == 0
    first = capsys.readouterr().err
    mine_flags = ["--learning_rate", "1e-4", "--num_train_epochs", "3", "--warmup_steps", "10"]
    mine_flags += ["--head-dropout", "0", "--tag-loss-weight", "2", "--projection-dim", "16"]
    mine_flags += ["--per-device-train-batch-size", "64"]
    assert main([*flags, "--freeze-encoders", *mine_flags, *out]) == 0
    second = capsys.readouterr().err
    assert main([*flags, *out]) == 0
    assert "settings (frozen-head recipe where no flag was given): learning_rate=0.002" in first
    assert "learning_rate=0.0001, num_train_epochs=3" in second  # what the run uses
    assert "head-dropout=0.0" in second and "lr_scheduler_type=cosine" in second
    (head, head_config), (mine, my_config), (full, full_config) = seen
    assert head.learning_rate == 2e-3 and head.num_train_epochs == 10
    # a small feed: the recipe's 512 shrinks so an epoch takes 20 steps (never under 32)
    assert head.per_device_train_batch_size == 32 and head.lr_scheduler_type == "cosine"
    assert "training rows: batch 32 per device" in first
    assert head.warmup_steps == 0.05 and head.weight_decay == 0.01
    assert (head_config.dropout, head_config.label_smoothing) == (0.3, 0.1)
    assert (head_config.projection_dim, head_config.tag_loss_weight) == (256, 0.5)
    assert (mine.learning_rate, mine.num_train_epochs, mine.warmup_steps) == (1e-4, 3, 10)
    assert mine.per_device_train_batch_size == 64  # the user's batch is not scaled
    assert (my_config.dropout, my_config.tag_loss_weight) == (0.0, 2.0)
    assert (my_config.projection_dim, my_config.label_smoothing) == (16, 0.1)
    default = TrainingArguments(output_dir=str(tmp_path / "x"))
    assert full.learning_rate == default.learning_rate  # end to end: the Trainer's defaults
    assert full.per_device_train_batch_size == default.per_device_train_batch_size
    assert (full_config.projection_dim, full_config.dropout) == (512, 0.1)


def test_train_cli_same_seed_same_model(tmp_path: Path, tiny_encoders: tuple[str, str]) -> None:
    """The new head's initial weights follow --seed, so a rerun gives the same model."""
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--freeze-encoders"]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--max_steps", "2"]
    flags += ["--report_to", "none", "--use_cpu", "--save_strategy", "no"]
    flags += ["--embedding-cache", "none"]

    def trained(seed: int, name: str) -> dict[str, torch.Tensor]:
        out = tmp_path / name
        assert main([*flags, "--seed", str(seed), "--output_dir", str(out)]) == 0
        return MultimodalCatModel.from_pretrained(out).state_dict()

    first, again, other = trained(3, "a"), trained(3, "b"), trained(4, "c")
    head = [name for name in first if name.startswith("category_head")]
    assert head and all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in head)


def test_recipes_refuse_non_scalars_and_build_training_arguments(tmp_path: Path) -> None:
    import doctest

    from multimodal_cat.training import FROZEN_HEAD, Recipe, recipes

    assert doctest.testmod(recipes).failed == 0
    with pytest.raises(TypeError, match="expected a number, string or bool for 'report_to'"):
        Recipe("bad", training={"report_to": ["none"]})
    args = FROZEN_HEAD.training_arguments(str(tmp_path), learning_rate=1e-3)
    assert (args.learning_rate, args.num_train_epochs, args.lr_scheduler_type) == (
        1e-3,
        10,
        "cosine",
    )
    share = getattr(args, "warmup_ratio", None) or args.warmup_steps  # name per transformers
    assert share == 0.05


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "trainer_example.py"
EXAMPLE_ENCODERS = 'vision, text = "dinov2-small", "minilm"'


def test_the_readme_trainer_example_reports_eval_loss_and_metrics(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/trainer_example.py as the README quotes it, on tiny encoders (a tagless model,
    a plain Trainer without label_names)."""
    import runpy
    import shutil

    source = EXAMPLE.read_text(encoding="utf-8")
    assert source.count(EXAMPLE_ENCODERS) == 1
    vision, text = tiny_encoders
    shutil.copytree(EXAMPLE.parent, tmp_path / "examples")
    script = tmp_path / "examples" / "trainer_example.py"
    script.write_text(source.replace(EXAMPLE_ENCODERS, f"vision, text = {vision!r}, {text!r}"))
    monkeypatch.chdir(tmp_path)
    found = runpy.run_path(str(script))
    metrics = found["metrics"]
    assert np.isfinite(metrics["eval_loss"])
    assert {"eval_leaf_accuracy", "eval_hierarchical_f1", "eval_valid_path_rate"} <= set(metrics)
    assert found["model"].config.tag_groups == []
    assert MultimodalCatModel.from_pretrained(tmp_path / "trainer-out").config.num_categories > 0


def test_a_plain_trainer_evaluates_a_model_without_tags(tmp_path: Path) -> None:
    model = tiny_model(tags=None, freeze_encoders=True)
    assert isinstance(model, MultimodalCatModel)
    rng = np.random.default_rng(0)
    dataset = embedding_dataset(
        [2, 3, 5, 6, 1, 2, 3, 6],
        image_embeds=rng.normal(size=(8, 64)),
        text_embeds=rng.normal(size=(8, 32)),
        image_mask=[1, 1, 0, 1, 1, 1, 1, 1],
    )
    trainer = Trainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=EmbeddingCollator(),
        compute_metrics=build_compute_metrics(model.config.category_parents),
    )
    assert trainer.label_names == ["labels"]
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"]) and "eval_leaf_accuracy" in metrics
    with pytest.raises(ValueError, match="configs without tag groups"):
        type(model)(tiny_model(freeze_encoders=True).config)
