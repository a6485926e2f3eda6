"""One writer per output (issue 22, item 1): a second job on the same output is refused at once,
naming the holder; the lock dies with its process; a finished output is verified by digest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.feeds import categorize_feed
from multimodal_cat.feeds.lock import OutputLock, OutputLockedError, lock_path
from multimodal_cat.feeds.write import OutputWriter, ResumeError, checkpoint_path
from multimodal_cat.predictors import DryRunPredictor

SLOW_JOB = """
import sys, time
from multimodal_cat.feeds import categorize_feed
from multimodal_cat.predictors import DryRunPredictor

class Slow(DryRunPredictor):
    fingerprint = "dry-run"

    def predict(self, products, **kwargs):
        time.sleep(0.05)
        return super().predict(products, **kwargs)

categorize_feed(sys.argv[1], Slow(), sys.argv[2], batch_size=10, progress=False)
"""


def _feed(path, rows: int, word: str = "Product"):
    lines = ["id,title"] + [f"{i},{word} number {i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_for_rows(out, rows: int, process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        state = checkpoint_path(out)
        if state.exists() and json.loads(state.read_text() or "{}").get("rows", 0) >= rows:
            return
        time.sleep(0.01)
    raise AssertionError("the first job did not start writing")


def test_second_job_on_one_output_is_refused_and_first_finishes_intact(tmp_path, capsys):
    feed_a = _feed(tmp_path / "a.csv", 400)
    feed_b = _feed(tmp_path / "b.csv", 400, word="Other")
    out = tmp_path / "same.csv"
    first = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(feed_a), str(out)])
    try:
        _wait_for_rows(out, 20, first)
        code = main(["categorize", str(feed_b), "--dry-run", "-o", str(out), "--no-progress"])
        message = capsys.readouterr().err
        assert code == 2
        assert "being written by another job" in message and f"process {first.pid}" in message
        assert "Traceback" not in message
    finally:
        first.wait(timeout=60)
    assert first.returncode == 0
    categorize_feed(feed_a, DryRunPredictor(), tmp_path / "alone.csv", progress=False)
    assert out.read_bytes() == (tmp_path / "alone.csv").read_bytes()
    assert not lock_path(out).exists()  # released and removed at the end of the job


def test_writer_refuses_a_held_output_without_touching_it(tmp_path):
    out = tmp_path / "out.jsonl"
    with OutputWriter(out, ["row", "id"]) as first:
        first.write_batch([{"row": 1, "id": "a"}], {})
        before = out.read_bytes(), checkpoint_path(out).read_bytes()
        for resume in (False, True):
            with pytest.raises(OutputLockedError, match=f"process {os.getpid()}"):
                OutputWriter(out, ["row", "id"], resume=resume)
        assert (out.read_bytes(), checkpoint_path(out).read_bytes()) == before
        first.write_batch([{"row": 2, "id": "b"}], {})
        first.finish()
    assert out.read_text().count("\n") == 2


def test_lock_of_a_killed_job_is_released(tmp_path):
    out = tmp_path / "out.csv"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom multimodal_cat.feeds.lock import OutputLock\n"
            "OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputLockedError, match=f"process {holder.pid}"):
        OutputLock(out).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with OutputLock(out) as lock:  # the kernel released it with the process
        assert lock.held


def _finish_keeping_progress(feed, out, monkeypatch):
    """A job killed between its last write and its clean-up: the progress file stays."""
    import multimodal_cat.feeds.job as job

    with monkeypatch.context() as patch:
        patch.setattr(job, "checkpoint_path", lambda output: out.with_name("elsewhere.json"))
        categorize_feed(feed, DryRunPredictor(), out, progress=False)
    assert checkpoint_path(out).exists()


def test_finished_output_edited_in_place_is_refused_on_resume(tmp_path, monkeypatch):
    feed = _feed(tmp_path / "feed.csv", 30)
    out = tmp_path / "out.csv"
    _finish_keeping_progress(feed, out, monkeypatch)
    data = out.read_bytes()
    edited = data.replace(b"Dry run > 7", b"Dry run > 8", 1)
    assert edited != data and len(edited) == len(data)
    out.write_bytes(edited)
    with pytest.raises(ResumeError, match="same size, other bytes"):
        categorize_feed(feed, DryRunPredictor(), out, resume=True, progress=False)
    out.write_bytes(data)  # restored: the finished job resumes as a no-op
    summary = categorize_feed(feed, DryRunPredictor(), out, resume=True, progress=False)
    assert summary.rows == 30 and out.read_bytes() == data


def test_finished_parquet_output_is_verified_by_digest(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    feed = _feed(tmp_path / "feed.csv", 30)
    out = tmp_path / "out.parquet"
    _finish_keeping_progress(feed, out, monkeypatch)
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    with pytest.raises(ResumeError, match="changed"):
        categorize_feed(feed, DryRunPredictor(), out, resume=True, progress=False)
