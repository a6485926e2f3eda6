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
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from multimodal_cat import __version__
from multimodal_cat._progress import switched
from multimodal_cat.cli.errors import UserError
from multimodal_cat.cli.outputs import check_outputs

__all__ = ["UserError", "build_parser", "main"]

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = (
    "taxonomy", "categorize", "evaluate", "calibrate", "train", "review", "catalog", "serve"
)


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
    _add_quiet(parser)
    return parser


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """Give every command (each parser without sub-commands) ``-q/--quiet``.

    ``train`` hands all its arguments to its own parser, which reads ``--quiet`` itself.
    """
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in commands:
        for sub in dict.fromkeys(action.choices.values()):  # aliases share a parser
            _add_quiet(sub)
    if not commands and parser.add_help and "--quiet" not in parser._option_string_actions:
        parser.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="no progress bars or info lines (warnings, errors and the output still print)",
        )


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler or ``kill``): stop like Ctrl-C, with exit code 143."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Exit codes: 0 done; 1 the job stopped (``categorize``: rerun with ``--resume``); 2 a
    mistake in the command or its input; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
    Work written before 130 or 143 is kept; ``categorize --resume`` continues it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    quiet = bool(getattr(args, "quiet", False))
    previous = _on_sigterm()
    try:
        check_outputs(args)  # no command writes over a file it reads
        with switched(bars=not quiet and not getattr(args, "no_progress", False), info=not quiet):
            return int(args.func(args) or 0)
    except UserError as error:
        print(f"multimodal-cat: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("multimodal-cat: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("multimodal-cat: terminated (SIGTERM); what was written is kept "
              "(categorize continues with --resume)", file=sys.stderr)
        return 143
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        _silence_stdout()
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm() -> Any:
    """Make SIGTERM raise :class:`Terminated` while a command runs; returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    return signal.signal(signal.SIGTERM, stop)


def _silence_stdout() -> None:
    """Point stdout at devnull so Python's exit-time flush does not fail on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
