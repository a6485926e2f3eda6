"""The streaming job: one output row per input row, in order, statuses, resume, shards."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from multimodal_cat.feeds import (
    ColumnMap,
    FeedColumnError,
    ImageLoader,
    ResumeError,
    categorize_feed,
    merge_shards,
    read_output,
    shard_path,
)
from multimodal_cat.feeds.write import checkpoint_path
from multimodal_cat.mapping import CategoryMapper, MappedCategory
from multimodal_cat.predictions import Prediction
from tests.conftest import FakePredictor as SharedFakePredictor


def _by_word_count(product) -> tuple[str, str]:
    cid = f"cat-{len(product.title.split())}"
    return cid, f"Root > {cid}"


def FakePredictor(fail_after: int | None = None) -> SharedFakePredictor:  # noqa: N802
    """The suite's fake predictor, predicting ``cat-<title word count>``."""
    return SharedFakePredictor(fail_after=fail_after, category=_by_word_count)


class FakeMapping:
    target_name = "google/2021-09-21"

    def map(self, source_id):
        return MappedCategory(self.target_name, (f"g-{source_id}",), (f"G > {source_id}",))


@pytest.fixture
def feed(tmp_path):
    """A CSV feed of 23 rows covering good, degraded, error and malformed rows."""
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 20), "red").save(tmp_path / "img" / "ok.png")
    (tmp_path / "img" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    lines = ["sku,Name,text,picture,price"]
    for i in range(1, 21):
        image = {3: "img/ok.png", 5: "img/corrupt.jpg", 6: "img/missing.png", 9: "img/ok.png"}.get(
            i, ""
        )
        title = "" if i == 7 else " ".join(["word"] * (i % 4 + 1))
        lines.append(f"P{i},{title},desc {i},{image},{i}.99")
    lines.insert(12, "bad,row,with,too,many,fields")
    lines.insert(15, ",,,,")  # no text, no image
    lines.insert(18, ",,,img/corrupt.jpg,1")  # no text, image unusable
    path = tmp_path / "feed.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


COLUMNS = ["id=sku", "title=Name", "description=text", "image=picture"]


def _run(feed, out, predictor=None, **kwargs):
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("progress", False)
    return categorize_feed(feed, predictor or FakePredictor(), out, **kwargs)


def test_every_row_accounted_for_in_order(feed, tmp_path):
    predictor = FakePredictor()
    summary = _run(feed, tmp_path / "out.csv", predictor, batch_size=4, keep_columns=["price"])
    rows = list(read_output(tmp_path / "out.csv"))
    assert [r["row"] for r in rows] == list(range(1, 24))
    assert (summary.rows, summary.ok, summary.degraded, summary.failed) == (23, 18, 2, 3)
    assert max(predictor.batches) <= 4
    by_status = {r["id"] or r["row"]: r["status"] for r in rows}
    assert (
        by_status["P3"] == "ok" and by_status["P5"] == "degraded" and by_status["P6"] == "degraded"
    )
    assert by_status["P7"] == "ok"  # empty title, description still there
    errors = {r["row"]: r["error"] for r in rows if r["status"] == "error"}
    assert errors[12] == "line 13: expected 5 fields, found 6"
    assert errors[15].startswith("no usable text") and "and no image" in errors[15]
    assert "image could not be used" in errors[18]
    degraded = next(r for r in rows if r["id"] == "P6")
    assert "file not found; predicted from text only" in degraded["warnings"]
    assert next(r for r in rows if r["id"] == "P20")["price"] == "20.99"
    assert predictor.saw_images.count(True) == 2


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_outputs_match_csv(feed, tmp_path, suffix):
    _run(feed, tmp_path / "out.csv")
    _run(feed, tmp_path / f"out{suffix}", mapper=CategoryMapper([FakeMapping()]))
    csv_rows = list(read_output(tmp_path / "out.csv"))
    other = list(read_output(tmp_path / f"out{suffix}"))
    assert [(r["row"], r["status"], r["category_id"] or None) for r in csv_rows] == [
        (r["row"], r["status"], r["category_id"]) for r in other
    ]
    mapped = next(r for r in other if r["status"] == "ok")
    assert mapped["google_2021_09_21_category_id"] == "g-" + mapped["category_id"]
    assert not (tmp_path / f".out{suffix}.partial.jsonl").exists()


def test_parquet_output_keeps_lists_and_structs_native(feed, tmp_path):
    pd = pytest.importorskip("pandas")
    _run(feed, tmp_path / "out.parquet")
    frame = pd.read_parquet(tmp_path / "out.parquet")
    ok = frame[frame["status"] == "ok"].iloc[0]
    assert ok["alternatives"][0]["path"] == ok["category_path"]  # a struct, not a JSON string
    assert ok["alternatives"][0]["score"] == pytest.approx(ok["confidence"])
    degraded = frame[frame["id"] == "P6"].iloc[0]
    assert any("predicted from text only" in w for w in degraded["warnings"])


def test_map_to_column_matches_versioned_taxonomy(feed, tmp_path):
    _run(feed, tmp_path / "out.jsonl", mapper=CategoryMapper([FakeMapping()]), map_to=["google"])
    row = next(read_output(tmp_path / "out.jsonl"))
    assert row["google_category_id"] == "g-cat-2" and row["google_provenance"] == "published"
    assert "google_2021_09_21_category_id" not in row


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_resume_after_crash_is_identical(feed, tmp_path, suffix):
    _run(feed, tmp_path / f"full{suffix}", batch_size=3)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError, match="out of memory"):
        _run(feed, out, FakePredictor(fail_after=2), batch_size=3)
    data = out if suffix != ".parquet" else tmp_path / f".out{suffix}.partial.jsonl"
    with open(data, "ab") as handle:  # a torn write after the last checkpoint
        handle.write(b'{"row": 99, "id": "half-writ')
    summary = _run(feed, out, batch_size=5, resume=True)
    assert summary.resumed_from == 6 and summary.rows == 23
    assert list(read_output(out)) == list(read_output(tmp_path / f"full{suffix}"))
    if suffix != ".parquet":
        assert out.read_bytes() == (tmp_path / f"full{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_finished_job_removes_its_progress_file_and_refuses_a_resume(feed, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    _run(feed, out)
    assert not checkpoint_path(out).exists() and not list(tmp_path.glob(".out*"))
    written, predictor = out.read_bytes(), FakePredictor()
    with pytest.raises(ResumeError, match="nothing to resume: .* is a finished output"):
        _run(feed, out, predictor, resume=True)
    assert predictor.batches == [] and out.read_bytes() == written


def test_a_stopped_job_keeps_its_progress_file_for_resume(feed, tmp_path):
    with pytest.raises(RuntimeError):
        _run(feed, tmp_path / "out.csv", FakePredictor(fail_after=1), batch_size=2)
    assert checkpoint_path(tmp_path / "out.csv").exists()


def test_resume_with_other_columns_is_refused(feed, tmp_path):
    with pytest.raises(RuntimeError):
        _run(feed, tmp_path / "out.csv", FakePredictor(fail_after=1), batch_size=2)
    with pytest.raises(ResumeError, match="other options"):
        _run(feed, tmp_path / "out.csv", keep_columns=["price"], resume=True)


def test_shards_merge_to_the_unsharded_output(feed, tmp_path):
    _run(feed, tmp_path / "full.jsonl", batch_size=4)
    for i in range(3):
        summary = _run(feed, tmp_path / "out.jsonl", batch_size=4, shard=f"{i}/3")
        assert summary.output == str(shard_path(tmp_path / "out.jsonl", i, 3))
    assert merge_shards(tmp_path / "out.jsonl", 3) == 23
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert sum(r["status"] == "error" for r in read_output(tmp_path / "out.jsonl")) == 3
    assert not checkpoint_path(tmp_path / "out.jsonl").exists()  # finished: no progress file


def test_stdin_stream_and_jsonl_malformed(tmp_path):
    lines = [json.dumps({"id": str(i), "title": f"item {i}"}) for i in range(5)]
    lines.insert(2, "{broken")
    stream = io.BytesIO(("\n".join(lines) + "\n").encode())
    summary = _run(stream, tmp_path / "out.csv", columns=None)
    rows = list(read_output(tmp_path / "out.csv"))
    assert summary.rows == 6 and summary.failed == 1
    assert rows[2]["error"].startswith("line 3: invalid JSON")


def test_missing_column_fails_before_writing(feed, tmp_path):
    with pytest.raises(FeedColumnError, match="columns found: sku, Name, text, picture, price"):
        _run(feed, tmp_path / "out.csv", columns=["title=Title"])
    assert not (tmp_path / "out.csv").exists()


def test_non_utf8_and_huge_fields_are_warnings(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_bytes(b"id,title,description\n1,Caf\xe9 au lait mug," + b"d" * 20_000 + b"\n")
    _run(path, tmp_path / "out.csv", columns=ColumnMap())
    row = next(read_output(tmp_path / "out.csv"))
    assert row["status"] == "ok"
    assert "invalid UTF-8 bytes in 'title' replaced" in row["warnings"]
    assert "description truncated from 20,000 to 10,000 characters" in row["warnings"]


def test_wrong_prediction_count_stops_the_job(feed, tmp_path):
    predictor = FakePredictor()
    full = predictor.predict
    predictor.predict = lambda products, **kwargs: full(products, **kwargs)[:-1]
    with pytest.raises(RuntimeError, match="predictions for"):
        _run(feed, tmp_path / "out.csv", predictor)


def test_image_root_and_loader_options(tmp_path):
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (10, 10)).save(tmp_path / "pics" / "a.png")
    path = tmp_path / "feed.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([["id", "title", "image"], ["1", "x", "a.png"]])
    predictor = FakePredictor()
    _run(path, tmp_path / "out.csv", predictor, columns=None, images=ImageLoader(tmp_path / "pics"))
    assert predictor.saw_images == [True]


def test_real_shopify_to_google_mapping(tmp_path):
    mapping_module = pytest.importorskip("multimodal_cat.mapping")
    mapping = mapping_module.Mapping.load("shopify", "google")

    class Activewear:
        def predict(self, products, **kwargs):
            path = "Apparel & Accessories > Clothing > Activewear"
            return [Prediction("aa-1-1", path, 0.8) for _ in products]

    path = tmp_path / "feed.jsonl"
    path.write_text('{"id": "1", "title": "Yoga leggings"}\n')
    _run(
        path,
        tmp_path / "out.jsonl",
        Activewear(),
        columns=None,
        mapper=CategoryMapper([mapping]),
        map_to=["google"],
    )
    row = next(read_output(tmp_path / "out.jsonl"))
    assert (row["google_category_id"], row["google_provenance"]) == ("5322", "published")
    assert row["google_category_path"] == "Apparel & Accessories > Clothing > Activewear"


def test_keep_all_columns_and_missing_keep_column(feed, tmp_path):
    _run(feed, tmp_path / "out.jsonl", keep_columns=["*"])
    row = next(read_output(tmp_path / "out.jsonl"))
    assert (row["sku"], row["Name"], row["price"]) == ("P1", "word word", "1.99")
    with pytest.raises(FeedColumnError, match="--keep column"):
        _run(feed, tmp_path / "out.jsonl", keep_columns=["colour"])


SLOW_JOB = """
import sys, time
from multimodal_cat.feeds import categorize_feed
from multimodal_cat.predictors import DryRunPredictor

class Slow(DryRunPredictor):
    fingerprint = "dry-run"  # predicts what DryRunPredictor does, only slower

    def predict(self, products, **kwargs):
        time.sleep(0.02)
        return super().predict(products, **kwargs)

categorize_feed(sys.argv[1], Slow(), sys.argv[2], batch_size=10, progress=False)
"""


def test_kill_9_then_resume_is_identical(tmp_path):
    feed = tmp_path / "feed.csv"
    lines = ["id,title"] + [f"{i},Product number {i} in size {i % 7}" for i in range(600)]
    feed.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    process = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(feed), str(out)])
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        state = checkpoint_path(out)
        if state.exists() and json.loads(state.read_text() or "{}").get("rows", 0) >= 200:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    from multimodal_cat.predictors import DryRunPredictor

    class SameDryRun(DryRunPredictor):
        fingerprint = "dry-run"

    summary = categorize_feed(feed, SameDryRun(), out, resume=True, progress=False)
    categorize_feed(feed, DryRunPredictor(), tmp_path / "full.csv", progress=False)
    assert 200 <= summary.resumed_from < 600 and summary.rows == 600
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_freed_memory_is_released_every_few_batches(feed, tmp_path, monkeypatch):
    import multimodal_cat.feeds.job as job
    from multimodal_cat.feeds.memory import release_freed_memory

    assert release_freed_memory() is (sys.platform.startswith("linux"))  # glibc here
    calls = []
    monkeypatch.setattr(job, "release_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(job, "TRIM_EVERY_BATCHES", 5)
    _run(feed, tmp_path / "out.csv", batch_size=1)  # 23 rows = 23 batches
    assert len(calls) == 4
