"""The README runs as written: every Python block executes (in order, in one namespace, in a
scratch folder holding the photos it names), with the offline short encoder names pointed at
tiny random encoders (``tiny_short_names`` of conftest) so the suite stays fast; every dotted
name it mentions imports."""

from __future__ import annotations

import importlib
import re
import shutil
import warnings
from pathlib import Path

import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOTTED = re.compile(r"`(multimodal_cat(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
FROM_IMPORT = re.compile(r"^from (multimodal_cat[\w.]*) import ([\w, ]+)", re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks() -> None:
    assert len(python_blocks()) >= 5


def test_the_trainer_example_is_quoted_verbatim() -> None:
    example = (README.parent / "examples" / "trainer_example.py").read_text(encoding="utf-8")
    assert example in python_blocks()


def test_every_python_block_runs(tiny_short_names: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(README.parent / "examples", tmp_path / "examples")  # the Trainer example's feed
    (tmp_path / "photos").mkdir()
    for name, colour in (("boot", "brown"), ("shirt", "blue"), ("mug", "black")):
        Image.new("RGB", (48, 48), colour).save(tmp_path / "photos" / f"{name}.jpg")
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(python_blocks(), start=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(block, f"README python block {number}", "exec"), namespace)
            except Exception as error:  # name the block that failed
                raise AssertionError(f"README python block {number} failed: {error!r}\n{block}") from error


def _dotted_names() -> set[str]:
    text = README.read_text(encoding="utf-8")
    names = set(DOTTED.findall(text))
    for module, imported in FROM_IMPORT.findall(text):
        names.update(f"{module}.{n.strip()}" for n in imported.split(",") if n.strip())
    return names


@pytest.mark.parametrize("dotted", sorted(_dotted_names()))
def test_every_dotted_name_in_the_readme_imports(dotted: str) -> None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return
    raise AssertionError(f"{dotted} does not import")
