"""``multimodal-cat serve`` as a process: a tiny checkpoint served, then stopped by SIGTERM."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from multimodal_cat.modeling.testing import TINY_PATHS  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "multimodal_cat", "serve", *args]
    return subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stderr.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve never became ready")


def test_serve_a_checkpoint_answer_and_stop_cleanly(tiny_checkpoint):
    port = _free_port()
    process = _serve(
        "--model", str(tiny_checkpoint), "--port", str(port), "--threads", "1",
        "--api-key-env", "MMCAT_TEST_KEY", "--review-below", "0.99",
        env={"MMCAT_TEST_KEY": "k-123"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        buffer = io.BytesIO()
        Image.new("RGB", (30, 30), (10, 200, 10)).save(buffer, "PNG")
        product = {"id": "p1", "title": "Leather boots", "image_base64": base64.b64encode(buffer.getvalue()).decode()}
        answer = httpx.post(url + "/v1/categorize", json=product, headers={"X-API-Key": "k-123"}, timeout=60)
        assert answer.status_code == 200, answer.text
        row = answer.json()
        assert row["status"] == "ok" and row["inputs"] == "text+image"
        assert row["category_path"] in TINY_PATHS
        assert row["needs_review"] is True  # a random tiny model is never 99% sure
        assert httpx.post(url + "/v1/categorize", json=product, timeout=60).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 0, process.stderr.read()


def test_an_unset_api_key_variable_is_a_user_mistake():
    result = subprocess.run(
        [sys.executable, "-m", "multimodal_cat", "serve", "--api-key-env", "MMCAT_SURELY_UNSET"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "MMCAT_SURELY_UNSET"},
        timeout=600,
    )
    assert result.returncode == 2
    assert "MMCAT_SURELY_UNSET: that environment variable is empty or unset" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_that_cannot_load_stops_the_server_with_exit_2(tmp_path):
    process = _serve("--model", str(tmp_path / "no-such-model"), "--port", str(_free_port()))
    try:
        code = process.wait(timeout=600)  # imports and shutdown are slow on a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert code == 2, stderr
    assert "the model could not be loaded" in stderr and "Traceback" not in stderr


def test_a_missing_index_folder_is_refused_before_anything_loads(tmp_path, capsys):
    from multimodal_cat.cli.main import main

    assert main(["serve", "--taxonomy", "shopify", "--index", str(tmp_path / "no-index")]) == 2
    assert "--index folder not found" in capsys.readouterr().err


def test_serve_and_categorize_take_the_same_text_encoder_option():
    from multimodal_cat.cli.categorize import _spec
    from multimodal_cat.cli.main import build_parser

    def spec_of(argv):
        args = build_parser().parse_args(argv)
        args.dry_run, args.adapt = getattr(args, "dry_run", False), getattr(args, "adapt", False)  # as serve sets
        return _spec(args)

    for command in (["serve"], ["categorize", "feed.csv", "-o", "out.csv"]):
        wanted = spec_of([*command, "--taxonomy", "google", "--text-encoder", "multilingual-e5-small"])
        assert wanted.text_encoder == "multilingual-e5-small"
        assert spec_of([*command, "--taxonomy", "google"]).text_encoder == "minilm"
