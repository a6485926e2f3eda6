"""A mistake in a command's paths or names is answered before torch or transformers load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the command line in a fresh interpreter and says which heavy modules it imported.
_PROBE = """
import sys
from multimodal_cat.cli.main import main
rc = main(sys.argv[1:])
print("HEAVY=" + ",".join(m for m in ("torch", "transformers") if m in sys.modules))
sys.exit(rc)
"""

CASES = {
    "categorize, missing model folder": (
        "categorize {feed} --model ./missing-folder -o {out}", "./missing-folder"),
    "categorize, missing feed": ("categorize {tmp}/absent.csv -o {out}", "absent.csv"),
    "categorize, unknown taxonomy": ("categorize {feed} --taxonomy amazon -o {out}", "amazon"),
    "categorize, unknown --map-to": ("categorize {feed} --map-to amazon -o {out}", "amazon"),
    "categorize, missing image root": (
        "categorize {feed} --image-root {tmp}/no-images -o {out}", "no-images"),
    "categorize, missing image encoder": (
        "categorize {feed} --image-encoder ./no-clip -o {out}", "no-clip"),
    "categorize, missing holdout": (
        "categorize {feed} --review-below 0.5 --holdout {tmp}/h.csv -o {out}", "h.csv"),
    "train, missing feed": ("train --feed {tmp}/absent.csv --output_dir {tmp}/m", "absent.csv"),
    "train, missing eval feed": (
        "train --feed {feed} --eval-feed={tmp}/ev.csv --output_dir {tmp}/m", "ev.csv"),
    "suggest, missing model": ("suggest {feed} --model ./no-model -o {tmp}/s.json", "no-model"),
    "suggest, missing feed": ("suggest {tmp}/absent.csv -o {tmp}/s.json", "absent.csv"),
    "review import, missing export": (
        "review import {tmp}/e.json --taxonomy shopify -o {tmp}/c.jsonl", "e.json"),
    "align, missing published rules": (
        "taxonomy align shopify google --published {tmp}/p.yml -o {tmp}/m.yml", "p.yml"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistakes_answer_with_exit_2_before_heavy_imports(tmp_path: Path, case: str) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("title\nRed running shoes\n", encoding="utf-8")
    command, named = CASES[case]
    argv = command.format(feed=feed, tmp=tmp_path, out=tmp_path / "out.csv").split()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and named in done.stderr
    assert "HEAVY=\n" in done.stdout, f"imported {done.stdout.strip()} before answering"
