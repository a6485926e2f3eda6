"""Where a command's output goes: a file, or stdout for ``-o -``; messages go to stderr.

Every command that writes an output file takes ``-o -`` through :func:`output_path`: the
library's writer writes a temporary file of the right kind (``.csv``, ``.jsonl``, ``.json``,
``.yml``...), whose bytes go to stdout when the command is done, so stdout holds nothing but
the output. Summaries and notes go to stderr through :func:`multimodal_cat._progress.info`
(silenced by ``--quiet``).

Example:
    >>> with output_path("out.csv", ".csv") as path:
    ...     path.name
    'out.csv'
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STDOUT = "-"


def is_stdout(output: str | Path | None) -> bool:
    """True for ``-o -``."""
    return output is not None and str(output) == STDOUT


def shown(output: str | Path) -> str:
    """The output's name in messages (``stdout`` for ``-``)."""
    return "stdout" if is_stdout(output) else str(output)


@contextmanager
def output_path(output: str | Path, suffix: str) -> Iterator[Path]:
    """The path to write the output to; for ``-``, a temporary file sent to stdout at the end.

    Args:
        output: The ``-o`` value: a file path, or ``-`` for stdout.
        suffix: The temporary file's suffix for ``-``; it picks the writer's format
            (``.csv``, ``.jsonl``, ``.json``, ``.yml``, ``.xml``).

    The temporary file is sent when the block ends, also after an error the command reports
    itself (a job that stopped sends the rows it wrote); an exception sends nothing.
    """
    if not is_stdout(output):
        yield Path(output)
        return
    with tempfile.TemporaryDirectory(prefix="multimodal-cat-") as folder:
        path = Path(folder) / f"output{suffix}"
        yield path
        if path.exists():
            sys.stdout.flush()
            with path.open("rb") as source:
                shutil.copyfileobj(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()


def warn(message: str) -> None:
    """A warning for the person at the terminal, on stderr, as one plain line (shown even
    with ``--quiet``)."""
    print(f"multimodal-cat: warning: {message}", file=sys.stderr)


@contextmanager
def plain_warnings(*categories: type[Warning]) -> Iterator[None]:
    """Within the block, Python warnings of ``categories`` are said once each, by :func:`warn`,
    without a file name and line number (other warnings as usual)."""
    with warnings.catch_warnings():
        for category in categories:
            warnings.simplefilter("once", category)
        shown_before = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            if issubclass(category, categories):
                warn(str(message))
            else:
                shown_before(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
