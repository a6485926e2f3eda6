"""Hostile pass two, configuration: damaged checkpoints, tampered processor settings, bad encoder
names and unwritable outputs are each one plain sentence and exit 2, found before the job
starts, with no half output (issue 22, item 11 and small items)."""

from __future__ import annotations

import json
import shutil

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.errors import ConfigurationError
from multimodal_cat.modeling import MultimodalCatProcessor
from multimodal_cat.modeling.processing import check_template

TREE = "id,parent_id,name\n1,,Apparel\n2,1,Shirts\n3,1,Shoes\n4,,Kitchen\n5,4,Mugs\n6,4,Pans\n"


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("id,title\n1,Blue shirt\n2,Mug\n", encoding="utf-8")
    return path


@pytest.fixture
def checkpoint(tmp_path, tiny_checkpoint):
    return shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")


def _edit(path, **changes):
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(changes)
    path.write_text(json.dumps(config), encoding="utf-8")


def _categorize(small, tmp_path, *flags):
    out = tmp_path / "out.csv"
    code = main(["categorize", str(small), "--no-progress", "-o", str(out), *flags])
    return code, out


@pytest.mark.parametrize("template", ["{title:>999999999}", "{0}", "{}", "{title!r}", "{title[0]}",
                                      "{title.upper}", "{title"])
def test_templates_hold_field_names_only(template):
    with pytest.raises(ConfigurationError, match="text_template"):
        check_template(template)


def test_plain_templates_pass():
    assert check_template("{brand}: {title} ({seller_category})") == "{brand}: {title} ({seller_category})"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"text_template": "{title:>999999999}"}, "text_template"), ({"text_template": "{0}"}, "text_template"),
     ({"max_length": -5}, "max_length")],
)
def test_tampered_processor_config_is_refused_on_load(checkpoint, small, tmp_path, capsys, changes, expected):
    _edit(checkpoint / "processor_config.json", **changes)
    with pytest.raises(ConfigurationError, match=expected):
        MultimodalCatProcessor.from_pretrained(checkpoint)
    code, out = _categorize(small, tmp_path, "--model", str(checkpoint))
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "--resume" not in err and not out.exists()


def _truncate(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def _pickle_only(folder):
    import torch

    (folder / "model.safetensors").unlink()
    torch.save({"not": "weights", "obj": ValueError("x")}, folder / "pytorch_model.bin")


def _fewer_labels(folder):
    config = json.loads((folder / "config.json").read_text())
    for key in ("category_ids", "category_paths", "category_names", "category_parents"):
        config[key] = config[key][:5]
    (folder / "config.json").write_text(json.dumps(config))


def _array_config(folder):
    (folder / "config.json").write_text("[1, 2]")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [(_truncate, "cannot load the checkpoint"), (_pickle_only, "cannot load the checkpoint"),
     (_fewer_labels, "label count"), (_array_config, "JSON object")],
    ids=["truncated-safetensors", "pickle-only-bin", "changed-label-count", "config-array"],
)
def test_damaged_checkpoints_exit_2(checkpoint, small, tmp_path, capsys, damage, expected):
    damage(checkpoint)
    code, out = _categorize(small, tmp_path, "--model", str(checkpoint))
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err and not out.exists()


def test_bad_stored_threshold_exits_2(checkpoint, small, tmp_path, capsys):
    _edit(checkpoint / "config.json", confidence_thresholds={"0.9": "abc"})
    code, out = _categorize(small, tmp_path, "--model", str(checkpoint), "--target-precision", "0.9")
    err = capsys.readouterr().err
    assert code == 2 and "'abc'" in err and not out.exists()


def test_missing_image_encoder_is_found_before_the_job(small, tmp_path, capsys):
    code, out = _categorize(small, tmp_path, "--taxonomy", "shopify", "--image-encoder", str(tmp_path / "nope"))
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and "--resume" not in err and not out.exists()


def test_unknown_text_encoder_for_suggest_exits_2(small, tmp_path, capsys):
    code = main(["suggest", str(small), "--taxonomy", "shopify", "--text-encoder", "nosuch",
                 "-o", str(tmp_path / "next.json")])
    err = capsys.readouterr().err
    assert code == 2 and "--text-encoder" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["missing-folder", "a-folder", "dev-full"])
def test_review_outputs_that_cannot_be_written_exit_2(tmp_path, capsys, where):
    tree = tmp_path / "tree.csv"
    tree.write_text(TREE, encoding="utf-8")
    target = {"missing-folder": str(tmp_path / "no" / "x.xml"), "a-folder": str(tmp_path),
              "dev-full": "/dev/full"}[where]
    code = main(["review", "config", "--taxonomy", str(tree), "-o", target])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot write {target!r}" in err


def test_unknown_text_encoder_for_train_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    feed = tmp_path / "train.csv"
    feed.write_text("title,category\nBlue shirt,Apparel > Shirts\nMug,Kitchen > Mugs\n", encoding="utf-8")
    code = main(["train", "--feed", str(feed), "--text-encoder", str(tmp_path / "no-such-encoder"),
                 "--vision-encoder", "none", "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Could not load encoder" in err and "Traceback" not in err
