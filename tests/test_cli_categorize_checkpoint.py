"""``multimodal-cat categorize --model`` over a tiny real checkpoint: images are loaded once,
relative to the feed; ``--min-confidence`` reaches the model; a missing model is a plain
mistake (exit 2)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from multimodal_cat.cli.main import main
from multimodal_cat.encoders import EmbeddingCache
from multimodal_cat.feeds import read_output
from multimodal_cat.modeling import MultimodalCatModel
from multimodal_cat.modeling.testing import TINY_PATHS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "products.csv"
TOP_LEVEL = {path.split(" > ")[0] for path in TINY_PATHS}


@pytest.fixture
def checkpoint(tiny_checkpoint: Path) -> Path:
    return tiny_checkpoint


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(folder))
    return folder


@pytest.fixture
def image_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that answers 404 to everything; yields its URL and the paths asked."""
    asked: list[str] = []

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            asked.append(self.path)
            self.send_error(404, "Not Found")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _categorize(feed: Path, checkpoint: Path, out: Path) -> list[dict]:
    args = ["categorize", str(feed), "--model", str(checkpoint), "-o", str(out), "--no-progress"]
    args.append("--allow-private-hosts")  # the test image server listens on 127.0.0.1
    assert main(args) == 0
    return list(read_output(out))


def test_missing_image_is_not_looked_up_in_the_working_directory(
    checkpoint: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is degraded and predicted from its text only, although the working directory
    has a file of that name (the job used to hand a Categorizer, which loaded every failed
    image a second time through ``ImageLoader(".")``)."""
    feed_dir, elsewhere = tmp_path / "feed", tmp_path / "cwd"
    feed_dir.mkdir()
    elsewhere.mkdir()
    Image.new("RGB", (32, 32), "red").save(elsewhere / "pic.png")  # not next to the feed
    (feed_dir / "feed.csv").write_text("id,title,image\n1,red leather boots,pic.png\n")
    monkeypatch.chdir(elsewhere)
    rows = _categorize(feed_dir / "feed.csv", checkpoint, tmp_path / "out.jsonl")
    assert [r["status"] for r in rows] == ["degraded"]
    assert rows[0]["warnings"] == ["image pic.png: file not found; predicted from text only"]
    cache = EmbeddingCache(cache_dir)
    assert not [k for k in cache.encoder_keys() if k.startswith("image:")]  # no image embedded
    assert cache.count() == 1  # the title


def test_failing_url_is_fetched_once_with_one_warning(
    checkpoint: Path,
    cache_dir: Path,
    image_server: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, asked = image_server
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    feed = tmp_path / "feed.csv"
    feed.write_text(f"id,title,image\n1,blue shirt,{url}/gone.png\n")
    rows = _categorize(feed, checkpoint, tmp_path / "out.jsonl")
    assert [r["status"] for r in rows] == ["degraded"]
    assert len(rows[0]["warnings"]) == 1 and "HTTP 404" in rows[0]["warnings"][0]
    assert asked == ["/gone.png"]


def test_min_confidence_backs_off_through_the_command(
    checkpoint: Path, cache_dir: Path, tmp_path: Path
) -> None:
    base = ["categorize", str(EXAMPLE), "--model", str(checkpoint), "--no-progress"]
    assert main([*base, "-o", str(tmp_path / "leaf.jsonl")]) == 0
    assert main([*base, "--min-confidence", "1", "-o", str(tmp_path / "top.jsonl")]) == 0
    leaf = list(read_output(tmp_path / "leaf.jsonl"))
    top = list(read_output(tmp_path / "top.jsonl"))
    assert {r["category_path"] for r in leaf} <= set(TINY_PATHS)
    assert {r["category_path"] for r in top} <= TOP_LEVEL  # nothing reaches 1: the top level
    for before, after in zip(leaf, top, strict=True):
        assert before["category_path"].startswith(after["category_path"])
        assert any("No category reaches confidence 1.0" in w for w in after["warnings"])


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_min_confidence_outside_0_1_exits_2(value: str, tmp_path: Path, capsys) -> None:
    args = ["categorize", str(EXAMPLE), "--dry-run", "--min-confidence", value]
    with pytest.raises(SystemExit) as stop:
        main([*args, "-o", str(tmp_path / "o.csv")])
    assert stop.value.code == 2
    assert f"expected a probability in [0, 1], found {value!r}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["./ckpt_missing", "{tmp}/models/ckpt_missing", "a/b/c"])
def test_model_path_that_does_not_exist_exits_2_without_the_hub(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def hub(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model hub was asked for a local path")

    monkeypatch.setattr(MultimodalCatModel, "from_pretrained", hub)
    monkeypatch.chdir(tmp_path)
    name = name.format(tmp=tmp_path)
    args = ["categorize", str(EXAMPLE), "--model", name, "-o", str(tmp_path / "o.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"model folder {name!r} not found" in err and "Traceback" not in err


def test_model_name_with_the_hub_offline_exits_2_at_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # an empty hub cache
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "multimodal_cat", "categorize", str(EXAMPLE)]
    done = subprocess.run(
        [*command, "--model", "ckpt_missing", "-o", str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "model 'ckpt_missing' is neither a local folder nor in the hub cache" in done.stderr
    assert "HF_HUB_OFFLINE=1" in done.stderr and "Traceback" not in done.stderr


def test_model_that_is_a_file_exits_2(tmp_path: Path, capsys) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not a folder")
    args = ["categorize", str(EXAMPLE), "--model", str(weights), "-o", str(tmp_path / "o.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"model {str(weights)!r} is a file" in err and "Traceback" not in err
