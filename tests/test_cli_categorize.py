"""``multimodal-cat categorize``: exit codes, predictor building, stdin, resume, shards."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.feeds import read_output

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "products.csv"


@pytest.fixture
def built(monkeypatch, fake_predictor):
    """Install a fake ``multimodal_cat.predictors.build.build_predictor``; returns its calls
    (and, after each, the predictor it built)."""
    import multimodal_cat.predictors.build as build

    calls: list[dict] = []

    def build_predictor(**kwargs):
        calls.append(kwargs)
        if kwargs.get("model") == "absent":
            raise FileNotFoundError("model folder 'absent' not found")
        predictor = fake_predictor(fail_after=0 if kwargs.get("model") == "broken" else None)
        calls.append({"predictor": predictor})
        return predictor

    monkeypatch.setattr(build, "build_predictor", build_predictor)
    return calls


def test_example_feed_with_taxonomy(built, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = main(
        [
            "categorize",
            str(EXAMPLE),
            "--taxonomy",
            "shopify",
            "--map-to",
            "google",
            "--bf16",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert built[0] == {
        "model": None,
        "taxonomy": "shopify",
        "bf16": True,
        "num_threads": None,
        "image_encoder": None,
        "text_encoder": "minilm",
        "adapt": False,
    }
    rows = list(read_output(out))
    assert len(rows) == 20 and {r["status"] for r in rows} == {"ok", "degraded"}
    assert {(r["google_category_id"], r["google_provenance"]) for r in rows} == {
        ("5322", "published")
    }
    assert "20 rows: 19 ok, 1 degraded, 0 failed" in capsys.readouterr().err


def test_threads_reach_the_predictor_and_torch(built, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: built.append({"torch_threads": n}))
    args = ["categorize", str(EXAMPLE), "--model", "ckpt", "--threads", "1", "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "o.csv")]) == 0
    assert built[0] == {"torch_threads": 1} and built[1]["num_threads"] == 1


def test_adapt_reaches_the_zero_shot_predictor(built, tmp_path):
    args = ["categorize", str(EXAMPLE), "--adapt", "--batch-size", "500", "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "o.csv")]) == 0
    assert built[0]["adapt"] is True and built[0]["model"] is None


def test_adapt_with_a_trained_model_is_a_user_mistake(tmp_path, capsys):
    args = ["categorize", str(EXAMPLE), "--adapt", "--model", str(tmp_path), "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "give --model or --adapt, not both" in err and "Traceback" not in err


def test_default_is_zero_shot_shopify(built, tmp_path):
    assert main(["categorize", str(EXAMPLE), "-o", str(tmp_path / "o.jsonl"), "--no-progress"]) == 0
    assert built[0]["taxonomy"] == "shopify" and built[0]["model"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--column", "title=Name"], "'Name' (for title) is not in the feed"),
        (["--shard", "4/4"], "shard index in [0, 4)"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--model", "absent"], "cannot build the predictor: model folder 'absent' not found"),
    ],
)
def test_user_mistakes_exit_2(built, tmp_path, capsys, extra, message):
    assert main(["categorize", str(EXAMPLE), "-o", str(tmp_path / "o.csv"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_paths_exit_2(built, tmp_path, capsys):
    assert main(["categorize", str(tmp_path / "absent.csv"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "feed file not found" in capsys.readouterr().err
    assert main(["categorize", str(EXAMPLE), "-o", str(tmp_path / "o.xlsx")]) == 2
    assert "output format" in capsys.readouterr().err
    (tmp_path / "feed.txt").write_text("a,b\n")
    assert main(["categorize", str(tmp_path / "feed.txt"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "--format" in capsys.readouterr().err


def test_model_failure_exits_1_and_resume_finishes(built, tmp_path, capsys):
    out = tmp_path / "o.csv"
    args = ["categorize", str(EXAMPLE), "-o", str(out), "--no-progress", "--batch-size", "8"]
    assert main([*args, "--model", "broken"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--model", "fine", "--resume"]) == 0
    assert [r["row"] for r in read_output(out)] == list(range(1, 21))


def test_stdin_dry_run(tmp_path, monkeypatch, capsys):
    data = b'{"id": "1", "title": "Red mug"}\n{"id": "2", "title": "Blue shirt"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "o.jsonl"
    assert main(["categorize", "-", "--dry-run", "-o", str(out), "--no-progress"]) == 0
    assert [r["category_id"] for r in read_output(out)] == ["dry-run/mug", "dry-run/shirt"]


def test_shards_then_merge(tmp_path, capsys):
    out = tmp_path / "o.csv"
    for i in range(2):
        args = ["categorize", str(EXAMPLE), "--dry-run", "--shard", f"{i}/2", "-o", str(out)]
        assert main([*args, "--no-progress"]) == 0
    assert main(["categorize", "--merge-shards", "3", "-o", str(out)]) == 2
    assert "is missing" in capsys.readouterr().err
    assert main(["categorize", "--merge-shards", "2", "-o", str(out)]) == 0
    assert [r["row"] for r in read_output(out)] == list(range(1, 21))
    assert not (tmp_path / ".o.csv.progress.json").exists()  # the merged output is finished


def test_feed_required_without_merge(tmp_path, capsys):
    assert main(["categorize", "--dry-run", "-o", str(tmp_path / "o.csv")]) == 2
    assert "needs a FEED" in capsys.readouterr().err


def test_world_size_env_shards_and_shard_0_merges(tmp_path, monkeypatch):
    out = tmp_path / "o.jsonl"
    base = ["categorize", str(EXAMPLE), "--dry-run", "-o", str(out), "--no-progress", "--merge"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(base) == 0
    assert not out.exists() and (tmp_path / "o.shard-1-of-2.jsonl").exists()
    monkeypatch.setenv("RANK", "0")
    assert main(base) == 0  # shard 0 finds shard 1 complete and merges
    assert [r["row"] for r in read_output(out)] == list(range(1, 21))
