"""One check for every command that writes: its output must not be one of its inputs.

``categorize -o tree.csv --taxonomy tree.csv`` or ``review config -o tree.csv`` would destroy
the file the command reads. Before any command runs, :func:`check_outputs` compares each file
it will write (``-o`` / ``--output``, and ``--review`` where a command writes one) with every
existing file named by its other arguments, by identity (the same file under another name or
through a link counts), and refuses with exit code 2, naming the argument.

Example:
    >>> import argparse
    >>> check_outputs(argparse.Namespace(feed="feed.csv", output="out.csv"))  # no such file: fine
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multimodal_cat.cli.errors import UserError
from multimodal_cat.errors import MultimodalCatError

# Arguments naming a file the command writes; "-" is standard output.
OUTPUT_ARGUMENTS = ("output", "review")


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse (exit 2) a command whose output is one of the files it reads.

    Raises:
        UserError: An output is the same file as an input; says which argument.
    """
    from multimodal_cat.feeds.write import refuse_input_as_output

    outputs = [v for name in OUTPUT_ARGUMENTS if _is_path(v := getattr(args, name, None))]
    if not outputs:
        return
    inputs = dict(_input_files(args))
    for output in outputs:
        try:
            refuse_input_as_output(output, inputs)
        except MultimodalCatError as error:
            raise UserError(str(error)) from None


def _input_files(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(what, path) for every argument value that names an existing file."""
    for name, value in vars(args).items():
        if name in OUTPUT_ARGUMENTS or callable(value):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if _is_path(item) and _is_file(item):
                yield _label(name, item), item


def _label(name: str, value: str) -> str:
    return (
        f"given to --{name.replace('_', '-')}"
        if name not in ("feed", "predictions", "export", "source", "target")
        else name
    )


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", "-") and "\0" not in value


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return False
