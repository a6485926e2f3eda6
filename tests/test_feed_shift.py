"""The feed-level confidence shift: one shift per feed, fitted on a sample spread over it, used
by every batch whatever its size, recorded for a resume, and never a reason to stop a job."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.feeds import categorize_feed, read_output
from multimodal_cat.feeds.shift import sample_file, sample_numbers
from multimodal_cat.feeds.write import checkpoint_path
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.confidence import DEFAULT_CONFIDENCE, FeedShift
from tests.test_align_engine import BagOfWordsEncoder

TREE = Taxonomy.from_paths(
    ["Toys > Dolls", "Toys > Puzzles", "Tools > Drills", "Tools > Saws", "Food > Pasta"], name="small"
)
KINDS = ["fashion doll with dress", "jigsaw puzzles 1000 pieces", "cordless drills 18v",
         "circular saws 7 inch", "spaghetti pasta 500 g", "blue widget thing"]  # fmt: skip


def _zero_shot(**kwargs) -> ZeroShotCategorizer:
    return ZeroShotCategorizer(TREE, BagOfWordsEncoder(), cache=False, reviewed=False, **kwargs)


def _titles(n: int) -> list[str]:
    """Titles whose kinds come in runs (batches differ from one another, as in real feeds)."""
    return [f"{KINDS[(i // 40) % len(KINDS)]} model {i}" for i in range(n)]


def _feed(tmp_path: Path, n: int, bad: bool = True) -> Path:
    lines = ["id,title"] + [f"P{i},{t}" for i, t in enumerate(_titles(n))]
    if bad:
        lines.insert(30, "X1,too,many,cells")  # malformed: an error row
        lines.insert(90, "X2,")  # nothing to predict from
    path = tmp_path / "feed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _confidences(path: Path) -> list[str]:
    return [str(r["confidence"]) for r in read_output(path)]


def test_every_batch_uses_the_feeds_shift_whatever_the_batch_size(tmp_path: Path) -> None:
    feed = _feed(tmp_path, 300)
    zs = _zero_shot()
    small = categorize_feed(feed, zs, tmp_path / "b8.csv", batch_size=8, progress=False)
    large = categorize_feed(feed, zs, tmp_path / "b64.csv", batch_size=64, progress=False)
    assert _confidences(tmp_path / "b8.csv") == _confidences(tmp_path / "b64.csv")
    assert (tmp_path / "b8.csv").read_bytes() == (tmp_path / "b64.csv").read_bytes()
    # one shift for the feed, read from its 300 good rows (fewer than the sample size: all)
    expected = _zero_shot().fit_feed_shift(_titles(300)).feed_shift
    assert small.confidence_shift == large.confidence_shift
    assert small.confidence_shift.products == 300
    assert small.confidence_shift.shift == pytest.approx(expected.shift)
    assert "confidence shift" in str(small) and "fitted on 300 products of the feed" in str(small)
    assert zs.feed_shift is None  # the job leaves the predictor as it found it
    rows = list(read_output(tmp_path / "b8.csv"))
    assert [r["row"] for r in rows] == list(range(1, 303))  # bad rows kept, as error rows
    assert sum(r["status"] == "error" for r in rows) == 2


def test_without_the_feeds_shift_batch_sizes_disagree() -> None:
    """What the job fixes: per call, a product's confidence depends on its batch."""
    titles = _titles(300)
    zs = _zero_shot()
    by_8 = [p.confidence for s in range(0, 300, 8) for p in zs.predict(titles[s : s + 8])]
    by_64 = [p.confidence for s in range(0, 300, 64) for p in zs.predict(titles[s : s + 64])]
    assert by_8 != by_64
    zs.fit_feed_shift(titles)
    by_8 = [p.confidence for s in range(0, 300, 8) for p in zs.predict(titles[s : s + 8])]
    by_64 = [p.confidence for s in range(0, 300, 64) for p in zs.predict(titles[s : s + 64])]
    assert by_8 == by_64 == [p.confidence for p in zs.predict(titles)]


def test_fit_feed_shift_reads_the_answers_the_predictor_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    # the fake's cosines at MiniLM's scale (1): its own (1.27) pushes half the confidences to
    # 0.9998 and above, where the 4-decimal rounding moves the re-read shift by more than 0.01
    monkeypatch.setattr("multimodal_cat.predictors.zero_shot.cosine_scale", lambda *args: 1.0)
    titles = _titles(240)  # every kind, the unsure one too
    plain = _zero_shot(feed_calibration=False)  # the prior's shift only
    before = np.array([p.confidence for p in plain.predict(titles)])
    from multimodal_cat.zero_shot.confidence import shifted

    raw = shifted(before, -DEFAULT_CONFIDENCE.prior_shift)
    zs = _zero_shot().fit_feed_shift(titles)
    assert zs.feed_shift.products == 240
    assert zs.feed_shift.shift == pytest.approx(DEFAULT_CONFIDENCE.shift_for(raw), abs=1e-2)  # rounded confidences
    # with min_confidence the answers (and their confidences) are the coarser ones
    coarse = _zero_shot().fit_feed_shift(titles, min_confidence=0.99)
    assert coarse.feed_shift.shift != zs.feed_shift.shift
    # no shift to read without feed calibration, or from no products
    assert _zero_shot(feed_calibration=False).fit_feed_shift(titles).feed_shift is None
    assert _zero_shot().fit_feed_shift([]).feed_shift is None


def test_the_sample_is_spread_over_the_whole_feed(tmp_path: Path) -> None:
    numbers = sample_numbers(2500, 1000)
    assert len(numbers) == 1000 and numbers[:4] == [1, 3, 6, 8] and numbers[-1] == 2498
    assert sample_numbers(7, 1000) == list(range(1, 8))
    feed = _feed(tmp_path, 2500)
    records = sample_file(feed, "csv", 1000)
    assert [r.number for r in records] == sample_numbers(2502, 1000)


def test_resume_reads_the_shift_back_and_gives_the_same_output(tmp_path: Path) -> None:
    feed = _feed(tmp_path, 300)
    categorize_feed(feed, _zero_shot(), tmp_path / "full.csv", batch_size=16, progress=False)

    class Flaky(ZeroShotCategorizer):  # one class for both runs: the same job's fingerprint
        calls, fail_after, refit = 0, 3, True

        def predict(self, items, **kwargs):
            Flaky.calls += 1
            if Flaky.calls > Flaky.fail_after:
                raise RuntimeError("out of memory")
            return super().predict(items, **kwargs)

        def fit_feed_shift(self, items, **kwargs):
            assert Flaky.refit, "a resume reads the recorded shift back, it does not fit again"
            return super().fit_feed_shift(items, **kwargs)

    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError, match="out of memory"):
        categorize_feed(feed, Flaky(TREE, BagOfWordsEncoder(), cache=False, reviewed=False), out,
                        batch_size=16, progress=False)  # fmt: skip
    state = json.loads(checkpoint_path(out).read_text(encoding="utf-8"))
    recorded = FeedShift.from_dict(state["notes"]["feed_shift"])
    assert state["rows"] == 48 and recorded.products == 300
    Flaky.fail_after, Flaky.refit = 10**6, False
    again = Flaky(TREE, BagOfWordsEncoder(), cache=False, reviewed=False)
    summary = categorize_feed(feed, again, out, batch_size=16, resume=True, progress=False)
    assert summary.resumed_from == 48 and summary.confidence_shift == recorded
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_a_stream_is_calibrated_on_its_first_records_and_every_record_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multimodal_cat.feeds.job as job

    monkeypatch.setattr(job, "SHIFT_SAMPLE_ROWS", 100)
    feed = _feed(tmp_path, 300)
    stream = io.BytesIO(feed.read_bytes())
    summary = categorize_feed(stream, _zero_shot(), tmp_path / "out.csv", format="csv",
                              batch_size=64, progress=False)  # fmt: skip
    rows = list(read_output(tmp_path / "out.csv"))
    assert [r["row"] for r in rows] == list(range(1, 303))
    assert [r["id"] for r in rows if r["status"] != "error"] == [f"P{i}" for i in range(300)]
    good_in_head = 100 - 2  # the first 100 records hold the two bad ones
    expected = _zero_shot().fit_feed_shift(_titles(good_in_head)).feed_shift
    assert summary.confidence_shift.products == good_in_head
    assert summary.confidence_shift.shift == pytest.approx(expected.shift)


def test_a_sample_the_predictor_fails_on_never_stops_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(ZeroShotCategorizer):
        def fit_feed_shift(self, items, **kwargs):
            raise ValueError("cannot score this sample")

    feed = _feed(tmp_path, 100)
    broken = Broken(TREE, BagOfWordsEncoder(), cache=False, reviewed=False)
    with caplog.at_level(logging.WARNING, logger="multimodal_cat.feeds.shift"):
        summary = categorize_feed(feed, broken, tmp_path / "out.csv", batch_size=32, progress=False)
    assert summary.confidence_shift is None and summary.rows == 102
    assert "each batch is calibrated on its own products" in caplog.text
    assert summary.ok == 100 and summary.failed == 2


def test_a_shift_the_caller_fixed_is_kept(tmp_path: Path) -> None:
    fixed = FeedShift(-2.0, 7)
    zs = _zero_shot(feed_shift=fixed)
    summary = categorize_feed(_feed(tmp_path, 50, bad=False), zs, tmp_path / "out.csv", progress=False)
    assert summary.confidence_shift == fixed and zs.feed_shift == fixed
    expected = [p.confidence for p in _zero_shot(feed_shift=fixed).predict(_titles(50))]
    assert [float(c) for c in _confidences(tmp_path / "out.csv")] == expected


def test_a_predictor_without_a_feed_shift_is_left_alone(tmp_path: Path, fake_predictor) -> None:
    summary = categorize_feed(_feed(tmp_path, 20, bad=False), fake_predictor(), tmp_path / "o.csv",
                              progress=False)  # fmt: skip
    assert summary.confidence_shift is None and "confidence shift" not in str(summary)


def test_a_feed_broken_mid_way_is_sampled_up_to_the_break(tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(_feed(tmp_path, 400, bad=False).read_bytes())
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(data[: len(data) // 2])  # cut: the reader fails part-way
    records = sample_file(broken, "csv", 1000)
    assert 0 < len(records) < 400 and [r.number for r in records] == list(range(1, len(records) + 1))
