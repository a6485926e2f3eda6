"""The ``multimodal-cat`` command line.

Each area of the library adds its own sub-command from a module in this package that exposes
``add_parser(subparsers)``; the parser it adds sets ``func``, a callable taking the parsed
arguments and returning an exit code.

Example:
    $ multimodal-cat taxonomy show aa-1-1
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from multimodal_cat import __version__
from multimodal_cat.cli.errors import UserError

__all__ = ["UserError", "build_parser", "main"]

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = ("taxonomy", "categorize", "train", "review", "serve")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="multimodal-cat",
        description="Categorize marketplace products and map categories between taxonomy trees.",
    )
    parser.add_argument("--version", action="version", version=f"multimodal-cat {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"multimodal_cat.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"multimodal_cat.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"multimodal-cat: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("multimodal-cat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at devnull so Python's exit-time flush does not fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
