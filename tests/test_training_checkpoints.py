"""What ``multimodal-cat train`` saves and uploads: loadable checkpoints, a readable label space,
and the input layer it shares with ``categorize`` (``--column``, the feed reader)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from transformers import Trainer

from multimodal_cat.categorizer import Categorizer
from multimodal_cat.cli.main import main
from multimodal_cat.modeling import MultimodalCatModel
from multimodal_cat.modeling.testing import tiny_model
from tests.test_training_trainer import _feed

PROCESSOR_FILES = {"processor_config.json", "tokenizer_config.json"}


def _text_only_flags(tmp_path: Path, text: str) -> list[str]:
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).drop(columns="image").to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--freeze-encoders"]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--report_to", "none"]
    return flags + ["--use_cpu", "--embedding-cache", "none", "--output_dir", str(tmp_path / "out")]


def test_checkpoint_folders_hold_the_processor(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))  # not the user's cache
    _, text = tiny_encoders
    flags = _text_only_flags(tmp_path, text)
    assert main([*flags, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1"]) == 0
    checkpoint = tmp_path / "out" / "checkpoint-1"
    assert {p.name for p in checkpoint.iterdir()} >= PROCESSOR_FILES
    categorizer = Categorizer.from_pretrained(str(checkpoint))
    best = categorizer.predict([{"title": "red boots"}])[0]
    assert best.category_path in MultimodalCatModel.from_pretrained(checkpoint).label_space.paths


def test_image_only_checkpoints_hold_the_processor(
    tmp_path: Path, tiny_encoders: tuple[str, str]
) -> None:
    """A processor without a tokenizer is saved too (the Trainer cannot align its tokens)."""
    from multimodal_cat.modeling import MultimodalCatProcessor

    vision, _ = tiny_encoders
    feed = tmp_path / "feed.csv"
    pd.DataFrame(_feed(tmp_path)).to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--vision-encoder", vision, "--text-encoder", "none"]
    flags += ["--projection-dim", "8", "--fusion-hidden-dim", "8", "--report_to", "none"]
    flags += ["--use_cpu", "--max_steps", "1", "--save_strategy", "steps", "--save_steps", "1"]
    assert main([*flags, "--output_dir", str(tmp_path / "out")]) == 0
    processor = MultimodalCatProcessor.from_pretrained(tmp_path / "out" / "checkpoint-1")
    assert processor.tokenizer is None and processor.image_processor is not None


def test_push_to_hub_uploads_the_processor(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch
) -> None:
    """No network: the hub client is replaced by one that lists the folder at upload time."""
    import transformers.trainer

    uploads: list[set[str]] = []
    cards: list[str] = []  # the model card uploaded: ours, not the Trainer's generic one

    class Repo:
        repo_id = "someone/tiny"

    class FakeHub:
        def create_repo(self, *args, **kwargs):
            return Repo()

        def upload_folder(self, *, folder_path: str, **kwargs):
            uploads.append({p.name for p in Path(folder_path).iterdir()})
            cards.append((Path(folder_path) / "README.md").read_text())

    monkeypatch.setattr(transformers.trainer, "hf_api", lambda *a, **k: FakeHub())
    _, text = tiny_encoders
    flags = [*_text_only_flags(tmp_path, text), "--max_steps", "1", "--save_strategy", "no"]
    assert main([*flags, "--push_to_hub", "--hub_model_id", "someone/tiny"]) == 0
    assert uploads and all({"config.json", *PROCESSOR_FILES} <= files for files in uploads)
    assert all("library_name: multimodal-cat" in card for card in cards)
    assert 'model="someone/tiny"' in cards[-1]


def test_saved_config_names_the_leaves_in_head_order(tmp_path: Path) -> None:
    model = tiny_model()
    space = model.label_space
    leaves = [space.paths[i] for i in space.leaves]
    model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["id2label"] == {str(i): path for i, path in enumerate(leaves)}
    assert saved["label2id"] == {path: i for i, path in enumerate(leaves)}
    loaded = MultimodalCatModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.num_labels == loaded.category_head.classifier.out_features == 4
    # a checkpoint saved before the fix (placeholder labels) still loads, with the leaves' names
    saved["id2label"], saved["label2id"] = {"0": "LABEL_0", "1": "LABEL_1"}, {"LABEL_0": 0}
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(saved))
    old = MultimodalCatModel.from_pretrained(tmp_path / "ckpt")
    assert list(old.config.id2label.values()) == leaves


def test_train_takes_column_flags_like_categorize(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch, capsys
) -> None:
    seen: list[list[str]] = []

    def spy(self, *args, **kwargs):
        seen.append(list(self.train_dataset["title"]))
        raise KeyboardInterrupt  # stop before training: the dataset is what this test checks

    monkeypatch.setattr(Trainer, "train", spy)
    _, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    frame = pd.DataFrame(_feed(tmp_path)).drop(columns="image").rename(columns={"title": "Name"})
    frame.to_csv(feed, index=False)
    flags = ["train", "--feed", str(feed), "--text-encoder", text, "--report_to", "none"]
    flags += ["--use_cpu", "--output_dir", str(tmp_path / "out")]
    assert main([*flags, "--column", "title=Name"]) == 130
    assert seen[0] == list(frame["Name"])
    assert main([*flags, "--column", "title=Name", "--title-column", "other"]) == 2
    assert "name different columns" in capsys.readouterr().err
    assert main([*flags, "--column", "title=Missing"]) == 2
    assert "column 'Missing' (for title) is not in the feed" in capsys.readouterr().err
    assert main([*flags, "--tag-column", "color=nope"]) == 2
    assert "column 'nope' (for tag color) is not in the feed" in capsys.readouterr().err


def test_train_reads_feeds_through_the_feed_reader(
    tmp_path: Path, tiny_encoders: tuple[str, str], monkeypatch, capsys
) -> None:
    """A record the reader cannot parse is reported and left out; JSON lines work as CSV does."""
    seen: list[int] = []

    def spy(self, *args, **kwargs):
        seen.append(len(self.train_dataset))
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", spy)
    _, text = tiny_encoders
    rows = pd.DataFrame(_feed(tmp_path)).drop(columns="image")
    csv = tmp_path / "feed.csv"
    rows.to_csv(csv, index=False)
    with csv.open("a") as handle:
        handle.write("one,too,many,fields,here\n")
    jsonl = tmp_path / "feed.jsonl"
    records = rows.to_dict("records")
    records[0].pop("colour")  # a key that the first record lacks is still a column
    jsonl.write_text("".join(json.dumps(record) + "\n" for record in records))
    flags = ["train", "--text-encoder", text, "--report_to", "none", "--use_cpu"]
    flags += ["--output_dir", str(tmp_path / "out")]
    assert main([*flags, "--feed", str(csv)]) == 130
    assert "skipped 1 unreadable records, e.g. line 10: expected 3 fields, found 5" in (
        capsys.readouterr().err
    )
    assert main([*flags, "--feed", str(jsonl), "--tag-column", "color=colour"]) == 130
    assert seen == [8, 8]


def test_train_help_needs_no_torch() -> None:
    code = (
        "import sys\n"
        "from multimodal_cat.cli.main import main\n"
        "assert main(['train', '--help']) == 0\n"
        "assert 'torch' not in sys.modules and 'datasets' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--feed" in done.stdout and "--column FIELD=NAME" in done.stdout


@pytest.mark.parametrize("spelling", ["--eval-split", "--eval_split"])
def test_train_options_take_dashes_or_underscores(spelling: str) -> None:
    from multimodal_cat.training.arguments import parse_train_args

    data, model, training = parse_train_args(
        [
            "--feed",
            "f.csv",
            spelling,
            "0.2",
            "--tag-column",
            "a",
            "--tag-column",
            "b=c",
            "--freeze-encoders",
            "--output_dir",
            "out",
            "--use_cpu",
        ]
    )
    assert (data.eval_split, data.tag_column, model.freeze_encoders) == (0.2, ["a", "b=c"], True)
    assert training.learning_rate == 2e-3  # the frozen-head recipe
