"""Hostile and careless feeds: every input row still yields exactly one output row, in order.

Each case comes from the hostile test pass of issue 14; the inputs are generated here.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.feeds import FeedReader, ResumeError, categorize_feed
from multimodal_cat.feeds.read import FeedFormatError
from multimodal_cat.feeds.write import checkpoint_path, read_output
from multimodal_cat.predictors import DryRunPredictor


class Recording(DryRunPredictor):
    """The dry-run predictor, remembering what it was asked (and with a stable identity)."""

    crash_after: int | None = None  # a class setting: a crash is not another predictor

    def __init__(self, flavour: str = "a"):
        self.flavour = flavour
        self.seen: list[str] = []

    def predict(self, products, **kwargs):
        if self.crash_after is not None and len(self.seen) >= self.crash_after:
            raise RuntimeError("crash")
        self.seen += [p.image_ref for p in products]
        return super().predict(products, **kwargs)


def _job(feed, out, predictor=None, **kwargs):
    kwargs.setdefault("progress", False)
    return categorize_feed(feed, predictor or DryRunPredictor(), out, **kwargs)


def _rows(path):
    return list(read_output(path))


# --- text ------------------------------------------------------------------------------------
def test_lone_surrogates_and_nul_in_title_id_and_kept_column(tmp_path):
    feed = tmp_path / "feed.jsonl"
    lines = [
        '{"id": "a\\ud800", "title": "Mug \\ud800 red", "note": "x\\udfff\\u0000y"}',
        '{"id": "b", "title": "Cup\\u0000", "note": ["\\ud83d"]}',
        '{"id": "c", "title": "Plain", "note": "ok"}',
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for suffix in (".csv", ".jsonl", ".parquet"):
        out = tmp_path / f"out{suffix}"
        summary = _job(feed, out, keep_columns=["note"])
        rows = _rows(out)
        assert summary.rows == 3 and [r["status"] for r in rows] == ["ok"] * 3
        assert rows[0]["id"] == "a\ufffd" and rows[0]["note"] == "x\ufffdy"
        assert "lone surrogates" in str(rows[0]["warnings"]) and "NUL" in str(rows[1]["warnings"])


def test_nul_byte_in_image_path_is_that_rows_error(tmp_path):
    feed = tmp_path / "feed.jsonl"
    rows = [{"id": "1", "image": "a\u0000.png"}, {"id": "2", "title": "x", "image": "b\u0000"}]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _job(feed, tmp_path / "out.csv")
    out = _rows(tmp_path / "out.csv")
    assert [r["status"] for r in out] == ["error", "degraded"]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_fifos_and_sockets_are_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")  # opened without blocking: never hangs
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock.png"))
    feed = tmp_path / "feed.csv"
    refs = ["/dev/zero", "/dev/urandom", "fifo.png", "sock.png"]
    feed.write_text("id,title,image\n" + "".join(f"{i},T {i},{r}\n" for i, r in enumerate(refs)))
    try:
        _job(feed, tmp_path / "out.csv")
    finally:
        server.close()
    out = _rows(tmp_path / "out.csv")
    assert [r["status"] for r in out] == ["degraded"] * 4
    assert "character device" in out[0]["warnings"] and "FIFO" in out[2]["warnings"]
    assert "socket" in out[3]["warnings"] or "cannot open" in out[3]["warnings"]


# --- CSV structure ---------------------------------------------------------------------------
def test_unclosed_quote_reports_every_swallowed_row(tmp_path):
    lines = ["id,title,image"] + [f"{i},Title {i},img{i}.png" for i in range(1, 2001)]
    lines[101] = '101,"Broken title,img101.png'  # row 101 opens a quote that never closes
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(lines) + "\n")
    summary = _job(feed, tmp_path / "out.csv")
    out = _rows(tmp_path / "out.csv")
    assert summary.rows == 2000 and [r["row"] for r in out] == list(range(1, 2001))
    assert [r["id"] for r in out[:100]] == [str(i) for i in range(1, 101)]
    assert out[100]["error"].startswith("line 102: a quote opened on this line is not closed")
    assert out[101]["error"] == "line 103: swallowed by the unclosed quote opened on line 102"
    assert sum(r["status"] == "error" for r in out) == 1900


def test_unclosed_quote_closed_by_a_later_quote(tmp_path):
    body = "\n".join(f"{i},Title {i},img{i}.png" for i in range(1, 11))
    body = body.replace("3,Title 3", '3,"Title 3').replace("7,Title 7", '7,"Title 7"')
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title,image\n" + body + "\n")
    _job(feed, tmp_path / "out.csv")
    out = _rows(tmp_path / "out.csv")
    assert [r["row"] for r in out] == list(range(1, 11))
    assert [r["id"] for r in out if r["status"] != "error"] == ["1", "2", "8", "9", "10"]


def test_multiline_description_is_still_one_row(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_text('id,title,description\n1,Mug,"Line one\nline two, with a comma"\n2,Cup,x\n')
    out_path = tmp_path / "out.jsonl"
    _job(feed, out_path)
    assert [r["status"] for r in _rows(out_path)] == ["ok", "ok"]


def test_semicolon_csv_gets_a_delimiter_hint(tmp_path, capsys):
    feed = tmp_path / "feed.csv"
    feed.write_text("id;title;image\n1;Mug;a.png\n")
    with pytest.raises(FeedFormatError, match="semicolons"):
        FeedReader(feed)
    assert main(["categorize", str(feed), "--dry-run", "-o", str(tmp_path / "o.csv")]) == 2
    assert "semicolons" in capsys.readouterr().err


def test_a_huge_line_is_an_error_row_not_held_whole(tmp_path):
    feed = tmp_path / "feed.jsonl.gz"
    with gzip.open(feed, "wt") as handle:
        handle.write('{"id": "1", "title": "a"}\n')
        handle.write('{"id": "2", "title": "' + "x" * 3000 + '"}\n')
        handle.write('{"id": "3", "title": "c"}\n')
    with FeedReader(feed, max_line=1000) as reader:
        rows = list(reader)
    assert [r.error is None for r in rows] == [True, False, True]
    assert "longer than the 1,000" in rows[1].error and rows[2].line == 3


# --- JSON lines ------------------------------------------------------------------------------
def test_jsonl_columns_are_the_union_over_rows(tmp_path):
    feed = tmp_path / "feed.jsonl"
    rows = [{"id": "1", "title": "Mug"}, {"id": "2", "title": "Cup", "image": "x.png"}]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with FeedReader(feed) as reader:
        assert reader.columns == ["id", "title", "image"]
    predictor = Recording()
    _job(feed, tmp_path / "out.csv", predictor)
    out = _rows(tmp_path / "out.csv")
    assert out[1]["status"] == "degraded" and "x.png" in out[1]["warnings"]


def test_jsonl_union_from_stdin_stream(tmp_path):
    import io

    data = b'{"id": "1", "title": "Mug"}\n{"id": "2", "description": "Blue"}\n'
    with FeedReader(io.BytesIO(data), "jsonl") as reader:
        assert reader.columns == ["id", "title", "description"] and len(list(reader)) == 2


# --- files that are not what they say --------------------------------------------------------
def test_non_gzip_gz_and_truncated_parquet_exit_2(tmp_path, capsys):
    fake_gz = tmp_path / "feed.csv.gz"
    fake_gz.write_text("id,title\n1,Mug\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["1"] * 50, "title": ["Mug"] * 50}), tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    for feed, message in ((fake_gz, "not gzip data"), (tmp_path / "cut.parquet", "Parquet")):
        code = main(["categorize", str(feed), "--dry-run", "-o", str(tmp_path / "o.csv")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err and "--resume" not in err


def test_gzip_cut_short_is_a_format_error(tmp_path):
    feed = tmp_path / "feed.csv.gz"
    data = gzip.compress(b"id,title\n" + b"1,Mug\n" * 5000)
    feed.write_bytes(data[:-10])  # the end of the stream is missing
    with pytest.raises(FeedFormatError, match="cannot be read to the end"), FeedReader(feed) as r:
        list(r)


# --- output path -----------------------------------------------------------------------------
def test_output_equal_to_input_is_refused(tmp_path, capsys):
    from multimodal_cat.feeds.write import OutputPathError

    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n" + "".join(f"{i},Mug {i}\n" for i in range(2000)))
    before = feed.read_bytes()
    os.link(feed, tmp_path / "hard.csv")
    for out in (feed, tmp_path / "." / "feed.csv", tmp_path / "hard.csv"):
        with pytest.raises(OutputPathError, match="is the input feed"):
            _job(feed, out)
    assert main(["categorize", str(feed), "--dry-run", "-o", str(feed)]) == 2
    assert "is the input feed" in capsys.readouterr().err and feed.read_bytes() == before


def test_output_under_a_file_exits_2(tmp_path, capsys):
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n1,Mug\n")
    (tmp_path / "plain").write_text("")
    code = main(["categorize", str(feed), "--dry-run", "-o", str(tmp_path / "plain" / "o.csv")])
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err


# --- resume ----------------------------------------------------------------------------------
@pytest.fixture
def stopped(tmp_path, monkeypatch):
    """A feed and an output stopped after 4 of its 10 rows (a crash in batch 3)."""
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n" + "".join(f"{i},Mug number {i}\n" for i in range(10)))
    out = tmp_path / "out.csv"
    monkeypatch.setattr(Recording, "crash_after", 4)
    with pytest.raises(RuntimeError):
        _job(feed, out, Recording(), batch_size=2)
    monkeypatch.setattr(Recording, "crash_after", None)
    return feed, out


def test_resume_same_job_continues(stopped, tmp_path):
    feed, out = stopped
    summary = _job(feed, out, Recording(), batch_size=2, resume=True)
    _job(feed, tmp_path / "full.csv", Recording())
    assert summary.resumed_from == 4 and out.read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_resume_with_another_predictor_or_column_map_is_refused(stopped):
    feed, out = stopped
    with pytest.raises(ResumeError, match="predictor"):
        _job(feed, out, Recording("b"), resume=True)
    with pytest.raises(ResumeError, match="column_map"):
        _job(feed, out, Recording(), columns=["description=title"], resume=True)


def test_resume_after_the_feed_changed_is_refused(stopped):
    feed, out = stopped
    text = feed.read_text().replace("Mug number 1\n", "Mug number X\n")
    feed.write_text(text)  # same size, other content
    with pytest.raises(ResumeError, match="feed changed"):
        _job(feed, out, Recording(), resume=True)


def test_resume_with_missing_or_shorter_output_is_refused(stopped, tmp_path):
    feed, out = stopped
    data = out.read_bytes()
    out.write_bytes(data[:-10])
    with pytest.raises(ResumeError, match="shorter than its checkpoint"):
        _job(feed, out, Recording(), resume=True)
    out.write_bytes(data[:-3] + b"zzz")
    with pytest.raises(ResumeError, match="changed since its checkpoint"):
        _job(feed, out, Recording(), resume=True)
    out.unlink()
    with pytest.raises(ResumeError, match="missing"):
        _job(feed, out, Recording(), resume=True)


def test_resume_of_a_finished_job_whose_output_was_deleted(tmp_path, capsys):
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n" + "".join(f"{i},Mug {i}\n" for i in range(5)))
    out = tmp_path / "out.csv"
    _job(feed, out)
    written = out.read_bytes()
    args = ["categorize", str(feed), "--dry-run", "-o", str(out), "--resume", "--no-progress"]
    assert main(args) == 2 and "is a finished output" in capsys.readouterr().err
    out.unlink()  # finished, progress file removed, output deleted: nothing left to resume from
    assert _job(feed, out, resume=True).rows == 5 and out.read_bytes() == written
    assert not checkpoint_path(out).exists()


def test_predictor_fingerprint_prefers_the_predictors_own():
    from multimodal_cat.feeds.resume import predictor_fingerprint

    class Own:
        fingerprint = "model-v3@sha256:abc"

    class Method:
        def fingerprint(self):
            return "from-method"

    assert predictor_fingerprint(Own()) == "model-v3@sha256:abc"
    assert predictor_fingerprint(Method()) == "from-method"
    assert predictor_fingerprint(Recording("a")) != predictor_fingerprint(Recording("b"))
    assert "0x" not in predictor_fingerprint(Recording())  # no memory addresses


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_stdin_jsonl_dry_run_with_surrogates(tmp_path, monkeypatch, capsys):
    import io

    data = b'{"id": "\\ud800", "title": "Mug"}\n{"id": "2", "title": "Cup"}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "o.csv"
    assert main(["categorize", "-", "--dry-run", "-o", str(out), "--no-progress"]) == 0
    assert [r["status"] for r in _rows(out)] == ["ok", "ok"]
