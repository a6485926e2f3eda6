"""A real Label Studio on 127.0.0.1 for the tests that talk to one (the review round trip and
the service's ML backend): found, started with the settings a test adds, and always stopped.

Label Studio is installed in its own virtual environment (it pins Django and friends); the
program is found through ``$LABEL_STUDIO_BIN``, the PATH or `.ci/run`'s venv. With
``MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO=1`` (set by `.ci/run`) a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from multimodal_cat.review.labelstudio_client import LabelStudioClient

TOKEN = "5a1e5d0c0ffee0ddba11c0de5eed5a1e5d0c0ffe"
START_SECONDS = 240  # first start migrates a fresh database: ~30 s idle, minutes when loaded


def program() -> str | None:
    """The ``label-studio`` program, or ``None``."""
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "multimodal-cat-label-studio" / "bin" / "label-studio"
    found = os.environ.get("LABEL_STUDIO_BIN") or shutil.which("label-studio")
    return found or (str(default) if default.exists() else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    stop = time.monotonic() + START_SECONDS
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"Label Studio did not answer on {url} within {START_SECONDS} s")


@contextmanager
def running_label_studio(data: Path, env: dict[str, str] | None = None) -> Iterator[LabelStudioClient]:
    """A started Label Studio whose data lives in ``data``, with ``env`` added to its settings;
    skipped (or failed, where required) when the program is missing; stopped on the way out."""
    found = program()
    if found is None:
        if os.environ.get("MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO"):
            pytest.fail("Label Studio is required here but no label-studio program was found")
        pytest.skip("label-studio is not installed (pip install label-studio, in its own venv)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        **(env or {}),
    }
    command = [
        found, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--host", url, "--username", "reviewer@example.com", "--password", "review-pass-123",
        "--user-token", TOKEN,
    ]
    with open(data / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=settings, stdout=log, stderr=subprocess.STDOUT, cwd=data)
        try:
            _wait_until_up(url, process)
            yield LabelStudioClient(url, TOKEN)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
