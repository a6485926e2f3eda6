"""The feed job on Ray (``--engine ray``): the same output as the local job, every row kept,
resumable under the local job's rules.

One small local Ray (2 CPUs, a 200 MB object store, no dashboard) serves the whole module and
is shut down after it. The predictor is the tiny checkpoint, built by each worker from its path.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'multimodal-cat[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'ray[data]')")

from multimodal_cat.cli.main import main  # noqa: E402
from multimodal_cat.distributed import PredictorSpec, categorize_dataset  # noqa: E402
from multimodal_cat.distributed import job as ray_job  # noqa: E402
from multimodal_cat.distributed.parts import decode_rows  # noqa: E402
from multimodal_cat.distributed.ray import BatchJob, RowsActor  # noqa: E402
from multimodal_cat.distributed.staging import encode_records  # noqa: E402
from multimodal_cat.feeds import ColumnMap, ResumeError, categorize_feed, read_output  # noqa: E402
from multimodal_cat.feeds.read import RawRow  # noqa: E402
from multimodal_cat.predictors.checkpoint import ModelPredictor  # noqa: E402

BATCH = 8


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One small local Ray for the module; stopped after it."""
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2,
             include_dashboard=False, log_to_driver=False)  # never a cluster `ray start` left
    yield
    ray.shutdown()


def _png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture()
def hostile_feed(tmp_path: Path) -> Path:
    """A CSV feed with good and broken images, broken rows, NULs and invalid UTF-8 (45 records)."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "red.png").write_bytes(_png((200, 10, 10)))
    (tmp_path / "img" / "corrupt.jpg").write_bytes(b"<html>404 not found</html>")
    lines = [b"id,title,brand,image"]
    for i in range(40):
        image = ("img/red.png", "img/missing.png", "img/corrupt.jpg", "")[i % 4]
        title = (f"Blue denim jacket {i}", f"Red running shoes {i}", "", f"Cotton t-shirt {i}")[i % 4 - 1]
        lines.append(f"P{i},{title},brand {i % 3},{image}".encode())
    lines.insert(7, b"X1,too,many,cells,here")  # malformed: an error row
    lines.insert(15, b"X2,Wool scarf \xff\xfe invalid utf8,b,")  # repaired, with a warning
    lines.insert(22, b"X3,Nul\x00 byte title,b,")
    lines.insert(30, b"X4,,b,")  # nothing to predict from: an error row
    lines.append(b'X5,"unclosed quote,b,')
    feed = tmp_path / "feed.csv"
    feed.write_bytes(b"\n".join(lines) + b"\n")
    return feed


@pytest.fixture()
def spec(tiny_checkpoint: Path) -> PredictorSpec:
    return PredictorSpec(model=str(tiny_checkpoint))


def _local(feed: Path, checkpoint: Path, out: Path, **kwargs) -> None:
    kwargs.setdefault("batch_size", BATCH)
    categorize_feed(feed, ModelPredictor.from_pretrained(checkpoint), out, progress=False, **kwargs)


def _on_ray(feed, spec, out, **kwargs):
    kwargs.setdefault("batch_size", BATCH)
    kwargs.setdefault("workers", 1)  # one model to load on 2 CPUs (the equality test uses 2)
    return ray_job.categorize_feed_on_ray(feed, spec, out, progress=False, **kwargs)


def test_output_equals_the_local_jobs_byte_for_byte(hostile_feed, spec, tiny_checkpoint, tmp_path):
    _local(hostile_feed, tiny_checkpoint, tmp_path / "local.csv", keep_columns=["brand"])
    summary = _on_ray(
        hostile_feed, spec, tmp_path / "ray.csv", keep_columns=["brand"], part_rows=16, workers=2
    )
    local = (tmp_path / "local.csv").read_bytes()
    assert (tmp_path / "ray.csv").read_bytes() == local
    rows = list(read_output(tmp_path / "ray.csv"))
    assert [r["row"] for r in rows] == list(range(1, len(rows) + 1))  # rows in = rows out, in order
    assert summary.rows == len(rows) and summary.ok + summary.degraded + summary.failed == len(rows)
    assert summary.failed >= 2 and summary.degraded >= 1  # malformed, no input; missing images
    assert not ray_job.work_folder(tmp_path / "ray.csv").exists()  # the work folder is removed


def test_a_jsonl_feed_into_parquet_equals_the_local_output(hostile_feed, spec, tiny_checkpoint, tmp_path):
    feed = tmp_path / "feed.jsonl"  # the same products as JSON lines, with an unparsable line
    records = [json.dumps({"id": f"J{i}", "title": f"Blue denim jacket {i}", "n": i}) for i in range(20)]
    records.insert(5, '{"id": "broken", "title": ')
    feed.write_text("\n".join(records) + "\n")
    _local(feed, tiny_checkpoint, tmp_path / "local.parquet", keep_columns=["n"])
    summary = _on_ray(feed, spec, tmp_path / "ray.parquet", keep_columns=["n"])
    assert list(read_output(tmp_path / "ray.parquet")) == list(read_output(tmp_path / "local.parquet"))
    assert (summary.rows, summary.failed) == (21, 1)


def _interrupted(feed, spec, out, monkeypatch):
    """A run whose driver dies after the workers wrote their parts, before the merge."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ray_job, "merge_parts", killed)
        with pytest.raises(KeyboardInterrupt):
            _on_ray(feed, spec, out, part_rows=16)
    return sorted((ray_job.work_folder(out) / "output").glob("*.parquet"))


def test_resume_redoes_only_missing_rows(hostile_feed, spec, tiny_checkpoint, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    out = tmp_path / "out.csv"
    parts = _interrupted(hostile_feed, spec, out, monkeypatch)
    assert len(parts) >= 2
    finished = sum(pq.read_metadata(p).num_rows for p in parts)
    lost = sum(pq.read_metadata(p).num_rows for p in parts[:2])
    parts[0].unlink()  # a part never written ...
    parts[1].write_bytes(parts[1].read_bytes()[:50])  # ... and one cut short by the kill
    summary = _on_ray(hostile_feed, spec, out, resume=True, part_rows=16)
    _local(hostile_feed, tiny_checkpoint, tmp_path / "local.csv")
    assert out.read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert summary.resumed_from == finished - lost  # the rows of intact parts were kept ...
    assert summary.redone == 0  # ... and none of them was done again
    assert summary.rows == finished


def test_resume_with_another_predictor_or_feed_is_refused(hostile_feed, spec, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    _interrupted(hostile_feed, spec, out, monkeypatch)
    with pytest.raises(ResumeError, match="predictor"):
        _on_ray(hostile_feed, PredictorSpec(dry_run=True), out, resume=True, part_rows=16)
    with pytest.raises(ResumeError, match="column_map"):
        _on_ray(hostile_feed, spec, out, resume=True, part_rows=16, columns=["title=brand"])
    changed = hostile_feed.read_bytes().replace(b"Blue denim jacket 1", b"Blue denim jacket I")
    assert changed != hostile_feed.read_bytes()
    hostile_feed.write_bytes(changed)  # same size, other records
    with pytest.raises(ResumeError, match="changed"):
        _on_ray(hostile_feed, spec, out, resume=True, part_rows=16)
    assert ray_job.work_folder(out).exists()  # refusals keep the earlier run's work


def test_resume_of_a_finished_output_is_refused(hostile_feed, tmp_path):
    out = tmp_path / "out.csv"
    _on_ray(hostile_feed, PredictorSpec(dry_run=True), out)
    with pytest.raises(ResumeError, match="nothing to resume"):
        _on_ray(hostile_feed, PredictorSpec(dry_run=True), out, resume=True)


def test_a_second_job_on_the_same_output_is_refused(hostile_feed, tmp_path):
    from multimodal_cat.feeds.lock import OutputLock, OutputLockedError

    out = tmp_path / "out.csv"
    with OutputLock(ray_job.work_folder(out)), pytest.raises(OutputLockedError):
        _on_ray(hostile_feed, PredictorSpec(dry_run=True), out)
    assert not out.exists()


def test_a_failing_batch_becomes_rows_not_a_failed_job(tmp_path):
    """The batch function never raises: a batch the model fails on is retried row by row and
    the row that still fails is an error row saying why."""
    actor = RowsActor(BatchJob(PredictorSpec(dry_run=True), ColumnMap().resolve(["title"]), staged=True))
    real = actor.output_rows.predictor.predict

    def predict(products, **kwargs):
        if any(p.title == "boom" for p in products):
            raise RuntimeError("model exploded")
        return real(products, **kwargs)

    actor.output_rows.predictor.predict = predict
    records = [RawRow(n, n + 1, {"title": t}) for n, t in enumerate(["shoes", "boom", "hat"], 1)]
    rows = decode_rows(actor(encode_records(records)))
    assert [r["row"] for r in rows] == [1, 2, 3]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert "the model failed on this row (RuntimeError: model exploded)" in rows[1]["error"]


def test_categorize_dataset_on_a_users_dataset():
    dataset = ray.data.from_items(
        [{"row": n, "title": t, "sku": f"S{n}"} for n, t in enumerate(["Red shoes", "", "Blue hat"], 1)]
    )
    out = categorize_dataset(dataset, PredictorSpec(dry_run=True), keep_columns=["sku"], workers=1)
    rows = sorted((decode_rows_of(r) for r in out.take_all()), key=lambda r: r["row"])
    assert [(r["row"], r["status"], r["sku"]) for r in rows] == [
        (1, "ok", "S1"), (2, "error", "S2"), (3, "ok", "S3")
    ]
    with pytest.raises(ValueError, match="expected a 'row' column"):
        categorize_dataset(ray.data.from_items([{"title": "x"}]), PredictorSpec(dry_run=True))


def decode_rows_of(record: dict) -> dict:
    import pickle

    return pickle.loads(record["record"])


def test_cli_engine_ray_same_output_summary_and_review(hostile_feed, tiny_checkpoint, tmp_path, capsys):
    """The command line on Ray: same output, same summary lines (totals, then review routing
    counted over the whole output) as the local engine."""
    flags = ["--model", str(tiny_checkpoint), "--review-below", "0.5", "--batch-size", "8",
             "--no-progress"]
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["categorize", str(hostile_feed), "-o", str(local), *flags]) == 0
    expected = capsys.readouterr().err.strip().splitlines()[-2:]
    code = main(["categorize", str(hostile_feed), "-o", str(remote), *flags,
                 "--engine", "ray", "--workers", "2"])
    assert code == 0
    found = capsys.readouterr().err.strip().splitlines()[-2:]
    assert remote.read_bytes() == local.read_bytes()
    assert found[0].split(" -> ")[0] == expected[0].split(" -> ")[0]  # the same totals
    assert found[1] == expected[1] and "review" in found[1]  # the same routing summary
    assert all("needs_review" in json.loads(x) for x in remote.read_text().splitlines())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "2"], "--workers is for --engine ray"),
        (["--engine", "ray", "--shard", "0/2"], "--shard is for the local engine"),
        (["--engine", "ray", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_cli_engine_mistakes_exit_2(hostile_feed, tmp_path, capsys, flags, message):
    code = main(["categorize", str(hostile_feed), "--dry-run", "-o", str(tmp_path / "o.csv"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_without_ray_installed_names_the_extra(hostile_feed, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    out = tmp_path / "o.csv"
    code = main(["categorize", str(hostile_feed), "--dry-run", "-o", str(out), "--engine", "ray"])
    assert code == 2
    assert "pip install 'multimodal-cat[ray]'" in capsys.readouterr().err
    assert not ray_job.work_folder(out).exists()  # refused before staging anything


def test_a_stale_work_folder_is_not_resumed_without_resume(hostile_feed, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    _interrupted(hostile_feed, PredictorSpec(dry_run=True), out, monkeypatch)
    stale = ray_job.work_folder(out)
    shutil.copy(hostile_feed, stale / "output" / "junk.parquet")  # would break a merge if kept
    summary = _on_ray(hostile_feed, PredictorSpec(dry_run=True), out)
    assert summary.resumed_from == 0 and summary.rows == len(list(read_output(out)))


def _zero_shot_spec(tmp_path: Path) -> PredictorSpec:
    """A zero-shot spec over a small tree (``minilm``: the tiny BERT under ``tiny_short_names``)."""
    tree = tmp_path / "tree.csv"
    paths = ["Toys", "Toys > Dolls", "Toys > Puzzles", "Tools", "Tools > Drills", "Tools > Saws"]
    tree.write_text("id,path\n" + "".join(f"n{i},{p}\n" for i, p in enumerate(paths)), encoding="utf-8")
    return PredictorSpec(taxonomy=str(tree))


SHIFT_TITLES = [f"{kind} {i}" for i in range(12) for kind in ("fashion doll", "cordless drill", "blue thing")]


def test_workers_use_the_drivers_feed_shift(tmp_path, tiny_short_names):
    """Each actor's predictor takes the shift the driver fitted, so a batch gets the
    confidences the local job gives it (without it, each batch reads its own)."""
    from dataclasses import replace

    from multimodal_cat.zero_shot.confidence import FeedShift

    spec = _zero_shot_spec(tmp_path)
    records = [RawRow(n, n + 1, {"title": t}) for n, t in enumerate(SHIFT_TITLES, 1)]
    shift = FeedShift(-1.25, 40)
    job = BatchJob(spec, ColumnMap().resolve(["title"]), staged=True, feed_shift=shift)
    rows = decode_rows(RowsActor(job)(encode_records(records)))
    local = spec.build().predictor
    local.feed_shift = shift
    expected = [p.confidence for p in local.predict(SHIFT_TITLES)]
    assert [r["confidence"] for r in rows] == expected
    per_call = decode_rows(RowsActor(replace(job, feed_shift=None))(encode_records(records)))
    assert [r["confidence"] for r in per_call] != expected


def test_the_driver_fits_the_shift_once_and_a_resume_reads_it_back(tmp_path, tiny_short_names):
    from multimodal_cat.distributed.staging import stage_feed
    from multimodal_cat.feeds.images import ImageLoader
    from multimodal_cat.feeds.read import FeedReader

    feed = tmp_path / "feed.csv"
    feed.write_text("title\n" + "\n".join(SHIFT_TITLES) + "\nX,too,many\n", encoding="utf-8")
    folder = tmp_path / "work"
    folder.mkdir()
    ray_job._write_job(folder, {"fingerprint": {"feed": "f"}, "columns": ["row"]})
    with FeedReader(feed) as reader:
        staged = stage_feed(reader, folder / "input", part_rows=8, progress=False)
    built = _zero_shot_spec(tmp_path).build()
    cmap, loader = ColumnMap().resolve(["title"]), ImageLoader(tmp_path)
    shift = ray_job._feed_shift(built, folder, staged, cmap, loader, None)
    assert shift.products == len(SHIFT_TITLES)  # every good record (fewer than the sample size)
    expected = built.predictor.fit_feed_shift(SHIFT_TITLES).feed_shift
    assert shift.shift == pytest.approx(expected.shift)
    state = json.loads((folder / "job.json").read_text())
    assert state["fingerprint"] == {"feed": "f"} and state["feed_shift"]["products"] == shift.products

    def no_refit(*args, **kwargs):
        raise AssertionError("a resume reads the recorded shift back")

    built.predictor.feed_shift = None
    built.predictor.fit_feed_shift = no_refit
    assert ray_job._feed_shift(built, folder, staged, cmap, loader, None) == shift
