"""``-o -`` on every command that writes an output, ``--quiet`` everywhere, bars named in words."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from multimodal_cat import _progress
from multimodal_cat.cli.main import build_parser, main

TREE = "id,path\nt,Toys\nt-1,Toys > Dolls\nh,Hardware\nh-1,Hardware > Drills\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding a feed and a tree (a file named '-' would land here)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feed.csv").write_text("id,title\n1,red running shoes\n2,blue jeans\n")
    (tmp_path / "tree.csv").write_text(TREE)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _no_stray_files(folder: Path) -> None:
    assert not (folder / "-").exists()
    assert not list(folder.glob(".*progress.json"))


def test_categorize_writes_csv_to_stdout_and_messages_to_stderr(folder, capsys) -> None:
    code, out, err = _run(capsys, "categorize", "feed.csv", "--dry-run", "-o", "-")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["1", "2"] and rows[0]["status"] == "ok"
    assert "2 rows: 2 ok" in err and "-> stdout" in err
    _no_stray_files(folder)


def test_categorize_writes_json_lines_to_stdout_for_a_json_lines_feed(folder, capsys) -> None:
    (folder / "feed.jsonl").write_text('{"id": "1", "title": "red running shoes"}\n')
    code, out, _ = _run(capsys, "categorize", "feed.jsonl", "--dry-run", "-o", "-")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["1"]


@pytest.mark.parametrize("flags", [["--resume"], ["--shard", "0/2"], ["--merge-shards", "2"]])
def test_stdout_refuses_what_needs_an_output_file(folder, capsys, flags) -> None:
    code, out, err = _run(capsys, "categorize", "feed.csv", "--dry-run", "-o", "-", *flags)
    assert code == 2 and out == "" and "needs an output file" in err


def test_review_commands_write_to_stdout(folder, capsys) -> None:
    code, out, err = _run(capsys, "review", "config", "--taxonomy", "tree.csv", "-o", "-")
    assert code == 0 and out.lstrip().startswith("<View") and "-> stdout" in err
    assert _run(capsys, "categorize", "feed.csv", "--dry-run", "-o", "out.csv")[0] == 0
    code, out, _ = _run(
        capsys, "review", "tasks", "feed.csv", "out.csv", "--taxonomy", "tree.csv", "-o", "-"
    )
    assert code == 0 and [t["data"]["id"] for t in json.loads(out)] == ["1", "2"]
    export = [
        {"id": 1, "data": {"id": "1", "suggested": "Toys > Dolls"},
         "annotations": [{"result": [{"value": {"taxonomy": [["Toys", "Toys > Dolls"]]}}]}]}
    ]
    (folder / "export.json").write_text(json.dumps(export))
    code, out, _ = _run(
        capsys, "review", "import", "export.json", "--taxonomy", "tree.csv", "-o", "-"
    )
    assert code == 0 and json.loads(out.splitlines()[0])["product_id"] == "1"
    _no_stray_files(folder)


def test_align_writes_the_mapping_yaml_to_stdout(folder, capsys) -> None:
    (folder / "target.csv").write_text("id,path\n10,Toys\n11,Toys > Dolls\n")
    code, out, err = _run(
        capsys, "taxonomy", "align", "tree.csv", "target.csv", "-o", "-", "--encoder", "none"
    )
    assert code == 0
    assert yaml.safe_load(out)["rules"][0]["input"]["product_category_id"] == "t"
    assert "# Toys > Dolls => Toys > Dolls\n- input:" in out  # each rule's paths, as comments
    assert "-> stdout" in err and "give --review" in err
    assert not list(folder.glob("*.review.csv"))
    _no_stray_files(folder)


def test_quiet_leaves_stderr_empty_and_the_output_whole(folder, capsys) -> None:
    code, out, err = _run(capsys, "categorize", "feed.csv", "--dry-run", "-o", "-", "--quiet")
    assert code == 0 and err == "" and len(list(csv.DictReader(io.StringIO(out)))) == 2
    code, out, err = _run(capsys, "review", "config", "--taxonomy", "tree.csv", "-o", "x.xml", "-q")
    assert code == 0 and err == "" and out == ""
    assert _progress.bars_enabled() and _run(capsys, "taxonomy", "stats")[0] == 0  # restored


def _leaf_parsers(parser: argparse.ArgumentParser, name: str = "") -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {name: parser}
    found = {}
    for action in subs:
        for child, sub in action.choices.items():
            found.update(_leaf_parsers(sub, f"{name} {child}".strip()))
    return found


def test_every_command_takes_quiet() -> None:
    leaves = _leaf_parsers(build_parser())
    assert {"categorize", "taxonomy align", "review tasks", "suggest", "train"} <= set(leaves)
    missing = [n for n, p in leaves.items() if n != "train" and "--quiet" not in p._option_string_actions]
    assert not missing


class _Encoder:
    key, dim = "text:some-cache-key|pool=mean|max_length=64", 2

    def encode(self, items, batch_size=32, normalize=False, bf16=False):
        return np.ones((len(items), self.dim), dtype=np.float32)


class _Bar:
    """Records what a progress bar was asked to show."""

    def __init__(self, made: list, **kwargs) -> None:
        self.kwargs, self.updates = kwargs, []
        made.append(self)

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        pass


def test_encoding_bar_is_named_in_words_and_moves_within_a_chunk(tmp_path, monkeypatch) -> None:
    import multimodal_cat.encoders.cache as cache_module

    made: list[_Bar] = []
    monkeypatch.setattr(cache_module, "progress_bar", lambda **kw: _Bar(made, **kw))
    texts = [f"title {i}" for i in range(10)]
    cache = cache_module.EmbeddingCache(tmp_path / "cache")
    cache_module.encode_cached(_Encoder(), texts, cache=cache, batch_size=1, progress=True)
    (bar,) = made
    assert bar.kwargs["desc"] == "encoding 10 texts" and "cache-key" not in bar.kwargs["desc"]
    assert bar.updates == [4, 4, 2]  # one chunk of 512, moved every 4 batches


def test_training_embedding_bar_counts_rows_batch_by_batch(tmp_path, monkeypatch) -> None:
    import multimodal_cat.training.cached as cached
    from multimodal_cat.feeds.columns import ColumnMap
    from multimodal_cat.modeling.testing import tiny_model, tiny_processor
    from multimodal_cat.training import build_dataset

    made: list[_Bar] = []
    monkeypatch.setattr(cached, "progress_bar", lambda **kw: _Bar(made, **kw))
    model, processor = tiny_model(freeze_encoders=True), tiny_processor(tmp_path / "tok")
    paths = model.label_space.paths
    rows = [{"title": f"item {i}", "category": paths[-1]} for i in range(5)]
    dataset, _ = build_dataset(rows, model.label_space, ColumnMap())
    cached.embed_dataset(dataset, model, processor, batch_size=2, chunk_size=512)
    (bar,) = made
    assert bar.kwargs["desc"] == "embedding the photos and texts of 5 rows"
    assert bar.kwargs["unit"] == "row"
    assert bar.updates == [2, 2, 1]


def test_quiet_hides_bars_that_bypass_no_progress(tmp_path, capsys) -> None:
    from multimodal_cat.encoders.cache import EmbeddingCache, encode_cached

    texts = ["a", "b", "c"]
    with _progress.switched(bars=False):
        encode_cached(_Encoder(), texts, cache=EmbeddingCache(tmp_path / "c1"), progress=True)
    assert capsys.readouterr().err == ""
    encode_cached(_Encoder(), texts, cache=EmbeddingCache(tmp_path / "c2"), progress=True)
    assert "encoding 3 texts" in capsys.readouterr().err


def test_quiet_turns_off_transformers_weight_loading_bars_before_it_is_imported() -> None:
    code = (
        "from multimodal_cat import _progress; _progress.set_quiet(); import sys; "
        "assert 'transformers' not in sys.modules; "
        "from transformers.utils import logging; print(logging.is_progress_bar_enabled())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_switching_bars_off_reaches_an_imported_transformers_and_is_undone() -> None:
    from transformers.utils import logging

    assert logging.is_progress_bar_enabled()
    with _progress.switched(bars=False):
        assert not logging.is_progress_bar_enabled()
    assert logging.is_progress_bar_enabled()


def test_train_quiet_prints_only_the_metrics(tmp_path, tiny_encoders, capsys) -> None:
    vision, text = tiny_encoders
    feed = tmp_path / "feed.csv"
    rows = ["title,category"] + [f"item {i},{'A > B' if i % 2 else 'A > C'}" for i in range(6)]
    feed.write_text("\n".join(rows) + "\n")
    flags = ["--feed", str(feed), "--eval-feed", str(feed), "--text-encoder", text]
    flags += ["--freeze-encoders", "--projection-dim", "8", "--max_steps", "2", "--use_cpu"]
    flags += ["--report_to", "none", "--save_strategy", "no", "--logging_steps", "1"]
    flags += ["--embedding-cache", "none", "--output_dir", str(tmp_path / "m")]
    assert main(["train", *flags, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "eval_loss" in json.loads(captured.out)  # stdout: the metrics JSON alone
    assert "%|" not in captured.err and "recipe" not in captured.err and "{'loss'" not in captured.err
    assert main(["train", *flags]) == 0  # without --quiet: the bars and the settings line
    assert "%|" in capsys.readouterr().err


def test_switching_bars_off_reaches_datasets_map_bars() -> None:
    import datasets

    assert not datasets.utils.are_progress_bars_disabled()
    with _progress.switched(bars=False):
        _progress.follow_switch()
        assert datasets.utils.are_progress_bars_disabled()
    assert not datasets.utils.are_progress_bars_disabled()
    _progress.follow_switch()  # bars on: nothing to do
    assert not datasets.utils.are_progress_bars_disabled()


def test_no_progress_and_quiet_reach_every_bar_while_a_job_runs(folder, monkeypatch, fake_predictor):
    from transformers.utils import logging

    import multimodal_cat.predictors.build as build

    seen = []

    def bars(product):  # called per product while the job runs
        seen.append((_progress.bars_enabled(), logging.is_progress_bar_enabled()))
        return fake_predictor.ACTIVEWEAR

    monkeypatch.setattr(build, "build_predictor", lambda **_: fake_predictor(category=bars))
    for flags in (["--no-progress"], ["--quiet"], []):
        assert main(["categorize", "feed.csv", "-o", "-", *flags]) == 0
    assert seen == [(False, False)] * 4 + [(True, True)] * 2
    assert _progress.bars_enabled() and logging.is_progress_bar_enabled()  # put back
