"""Hostile pass two, the command line: SIGTERM is exit 143 with a message, review options that
cannot work are refused, a tiny holdout is warned about, and the review summary after --resume
counts the whole job (issue 22, small items)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from multimodal_cat.cli.main import main
from tests.test_cli_categorize_review import _Predictor, _run


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text("id,title,seller_category\n1,a doll,\n2,wooden blocks,\n3,cordless drill,Toys\n4,a mystery,\n")
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_sigterm_says_so_and_exits_143(tmp_path):
    out = tmp_path / "out.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "multimodal_cat", "categorize", "-", "--format", "csv", "--dry-run",
         "--no-progress", "-o", str(out)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    process.stdin.write(b"id,title\n1,Blue shirt\n")
    process.stdin.flush()
    for _ in range(600):  # the output exists once the job has started (stdin stays open: it waits)
        if out.exists() or process.poll() is not None:
            break
        time.sleep(0.1)
    assert out.exists(), process.stderr.read().decode()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert b"terminated (SIGTERM)" in err and b"Traceback" not in err


@pytest.mark.parametrize("flags", [["--review-below", "0.8"], ["--target-precision", "0.9"],
                                   ["--holdout", "h.csv"]])
def test_dry_run_with_review_options_is_refused(tmp_path, feed, capsys, flags):
    out = tmp_path / "out.csv"
    assert main(["categorize", str(feed), "--dry-run", "--no-progress", "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "--dry-run" in err and not out.exists()


def test_a_holdout_under_100_rows_is_warned_about(monkeypatch, tmp_path, feed, capsys):
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("title,category\na doll,Toys > Dolls\ncordless drill,Tools > Drills\n")
    code, _ = _run(monkeypatch, tmp_path, feed, "--target-precision", "0.9", "--holdout", str(holdout))
    assert code == 0
    assert "has 2 labelled rows; a threshold chosen on fewer than 100 is unreliable" in capsys.readouterr().err


class _StopsOnce(_Predictor):
    stopped = False

    def predict(self, products, *, top_k=5, min_confidence=None):
        if any("mystery" in p.title for p in products) and not _StopsOnce.stopped:
            _StopsOnce.stopped = True
            raise RuntimeError("GPU fell off the bus")
        return super().predict(products, top_k=top_k, min_confidence=min_confidence)


def test_review_summary_after_resume_counts_the_whole_job(monkeypatch, tmp_path, feed, capsys):
    import multimodal_cat.predictors.build as build

    monkeypatch.setattr(build, "build_predictor", lambda **_: _StopsOnce())
    out = tmp_path / "out.csv"
    tree = _StopsOnce().taxonomy.save(tmp_path / "tiny.csv")  # the tree is checked before any model loads
    flags = ["categorize", str(feed), "--taxonomy", str(tree), "-o", str(out), "--no-progress",
             "--review-below", "0.9", "--batch-size", "2"]
    assert main(flags) == 1  # rows 1-2 written, then the model failed
    capsys.readouterr()
    assert main([*flags, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "3 of 4 categorized rows (75%) need review" in err
