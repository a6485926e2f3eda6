"""``multimodal-cat train``: fine-tune a categorizer on a product feed.

The command's options are dataclasses (:mod:`multimodal_cat.training.arguments`) parsed by
``HfArgumentParser`` next to ``TrainingArguments``, as in the Hugging Face example scripts, so
any ``Trainer`` flag is accepted; the command runs unchanged under ``accelerate launch``.

Example:
    $ multimodal-cat train --feed products.csv --taxonomy shopify --text-encoder minilm \\
        --vision-encoder dinov2-small --tag-column color --column title=Name --output_dir out \\
        --num_train_epochs 3 --per_device_train_batch_size 32 --learning_rate 3e-5
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from multimodal_cat._progress import switched
from multimodal_cat.cli.checks import check_file, check_folder, check_taxonomy
from multimodal_cat.cli.errors import UserError

_QUIET = ("-q", "--quiet")

# Options whose paths are checked before transformers loads: option -> (check, what it is)
_PATH_OPTIONS = {
    "feed": (check_file, "file"),
    "eval_feed": (check_file, "file"),
    "corrections": (check_file, "file"),
    "image_root": (check_folder, "folder"),
    "taxonomy": (check_taxonomy, ""),
}


def add_parser(subparsers: Any) -> None:
    """Add the ``train`` sub-command; its arguments are parsed when it runs (``--help`` too)."""
    parser = subparsers.add_parser(
        "train",
        help="train a categorizer on a product feed",
        add_help=False,
        prefix_chars="\0",  # every argument, -h included, goes to the command's own parser
    )
    parser.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, save the model and processor to ``--output_dir``, print the metrics as JSON.

    ``-q/--quiet`` (read here, not by the training parser) hides the bars and info lines.
    """
    argv = [a for a in args.argv if a not in _QUIET]
    with switched(bars=len(argv) == len(args.argv), info=len(argv) == len(args.argv)):
        return _train(argv)


def _train(argv: list[str]) -> int:
    check_path_options(argv)
    from multimodal_cat.errors import EncoderError
    from multimodal_cat.training.arguments import parse_train_args
    from multimodal_cat.training.errors import TrainingDivergedError, TrainingInputError

    try:
        data_args, model_args, training_args = parse_train_args(argv)
    except TrainingInputError as error:
        raise UserError(str(error)) from None
    except SystemExit as done:  # --help, or argparse refused a value and said why
        if done.code in (0, None):
            return 0
        raise UserError("invalid arguments (see above)") from None
    from multimodal_cat.training.run import leave_process_group, train_on_feed

    finished = False
    try:
        metrics = train_on_feed(data_args, model_args, training_args)
        finished = True
    except (TrainingInputError, EncoderError) as error:  # EncoderError: a bad encoder name
        raise UserError(str(error)) from None
    except TrainingDivergedError as error:  # the job failed, not the command: exit 1
        print(f"multimodal-cat: {error}", file=sys.stderr)
        return 1
    finally:
        leave_process_group(wait=finished)
    if training_args.process_index == 0:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def check_path_options(argv: list[str]) -> None:
    """Check the feed, tree and folders named in ``argv`` before ``HfArgumentParser`` loads.

    Both spellings (``--eval_feed`` / ``--eval-feed``) and ``--option=value`` are read; a
    missing value is left to the parser to report.
    """
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        key = name.lstrip("-").replace("-", "_")
        if not name.startswith("--") or key not in _PATH_OPTIONS:
            continue
        if not value:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
        if value:
            check, noun = _PATH_OPTIONS[key]
            check(value, f"{name} {noun}".strip())  # e.g. "--feed file not found: x.csv"
