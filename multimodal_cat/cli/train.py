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
from typing import Any

from multimodal_cat.cli.errors import UserError


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
    """Train, save the model and processor to ``--output_dir``, print the metrics as JSON."""
    from multimodal_cat.errors import EncoderError
    from multimodal_cat.training.arguments import parse_train_args
    from multimodal_cat.training.errors import TrainingInputError

    try:
        data_args, model_args, training_args = parse_train_args(args.argv)
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
    finally:
        leave_process_group(wait=finished)
    if training_args.process_index == 0:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0
