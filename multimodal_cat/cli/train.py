"""``multimodal-cat train``: fine-tune a categorizer on a product feed.

Any Hugging Face ``TrainingArguments`` flag is accepted next to the command's own options
(they are parsed by ``HfArgumentParser``), and the command runs unchanged under
``accelerate launch``.

Example:
    $ multimodal-cat train --feed products.csv --taxonomy shopify --text-encoder minilm \\
        --vision-encoder dinov2-small --tag-column color --output_dir out \\
        --num_train_epochs 3 --per_device_train_batch_size 32 --learning_rate 3e-5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from multimodal_cat.cli.errors import UserError

if TYPE_CHECKING:  # the training package imports torch and datasets: load it only to train
    from multimodal_cat.training.recipes import Recipe

EPILOG = (
    "Hugging Face TrainingArguments flags are accepted too, e.g. --num_train_epochs 3 "
    "--learning_rate 3e-5 --per_device_train_batch_size 32 --eval_strategy epoch --seed 42 "
    "(see transformers.TrainingArguments). Their defaults are the Trainer's, except with "
    "--freeze-encoders, where the head's recipe sets learning rate, epochs, batch sizes, weight "
    "decay, warm-up and schedule (multimodal_cat.training.recipes)."
)


class _TrainParser(argparse.ArgumentParser):
    """Keeps the flags it does not know for ``TrainingArguments`` instead of failing on them."""

    def parse_known_args(
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.training_flags = list(getattr(namespace, "training_flags", []) or []) + extras
        return namespace, []


def add_parser(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a categorizer on a product feed",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
    )
    parser.__class__ = _TrainParser
    data = parser.add_argument_group("data")
    data.add_argument("--feed", required=True, help="training feed: CSV, TSV, JSONL or Parquet")
    data.add_argument("--eval-feed", help="evaluation feed (same columns)")
    data.add_argument(
        "--eval-split", type=float, default=0.0, help="share of the feed held out for evaluation"
    )
    data.add_argument(
        "--taxonomy",
        help="shipped name (google, shopify) or file; default: paths found in the feed",
    )
    data.add_argument(
        "--category-column",
        default="category",
        help="column with category ids or full paths; several comma-separated columns are joined as a path",
    )
    data.add_argument("--title-column", default="title")
    data.add_argument("--description-column", default="description")
    data.add_argument("--brand-column", default="brand")
    data.add_argument("--image-column", default="image", help="column with image paths")
    data.add_argument("--image-root", help="folder that relative image paths start from")
    data.add_argument(
        "--tag-column", action="append", default=[], metavar="ATTR[=COLUMN]", help="a tag attribute"
    )
    data.add_argument(
        "--multi-valued-tag", action="append", default=[], metavar="ATTR", help="multi-valued tag"
    )
    data.add_argument(
        "--on-unknown", choices=("error", "skip"), default="error", help="unknown categories"
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--text-encoder", default="minilm", help="text tower (short name, hub id, folder, 'none')"
    )
    model.add_argument(
        "--vision-encoder", default="none", help="image tower (e.g. dinov2-small; 'none')"
    )
    model.add_argument("--text-template", default="{title}. {brand}. {description}")
    model.add_argument("--max-length", type=int, default=128, help="token limit of the text")
    model.add_argument("--fusion", choices=("concat", "gated"), default="concat")
    model.add_argument(
        "--projection-dim", type=int, help="default: 256 with --freeze-encoders, else 512"
    )
    model.add_argument(
        "--fusion-hidden-dim", type=int, help="default: 512 with --freeze-encoders, else 1024"
    )
    model.add_argument("--vision-pooling", choices=("cls", "mean", "cls_mean"), default="cls_mean")
    model.add_argument("--text-pooling", choices=("cls", "mean", "cls_mean"), default="mean")
    model.add_argument(
        "--head-dropout", type=float, help="default: 0.3 with --freeze-encoders, else 0.1"
    )
    model.add_argument("--modality-dropout", type=float, default=0.0)
    model.add_argument(
        "--label-smoothing", type=float, help="default: 0.1 with --freeze-encoders, else 0"
    )
    model.add_argument(
        "--tag-loss-weight",
        type=float,
        help="weight of the tag loss next to the category loss (default: 0.5 with "
        "--freeze-encoders, else 1)",
    )
    model.add_argument("--class-weights", choices=("none", "balanced"), default="none")
    model.add_argument(
        "--imaged-row-repeats",
        type=int,
        default=1,
        metavar="N",
        help="show each training row that has an image N times per epoch (when most rows have "
        "no image, this gives the image pathway enough training steps)",
    )
    model.add_argument(
        "--freeze-encoders",
        action="store_true",
        help="train only fusion and heads: each tower runs once over the feed (cached on disk), "
        "then the head trains on the pooled outputs, by default with the frozen-head recipe "
        "(learning rate 2e-3, 10 epochs, batch 512 per device, cosine schedule; flags you give "
        "win)",
    )
    model.add_argument(
        "--embedding-cache",
        default="auto",
        metavar="DIR",
        help="with --freeze-encoders: folder of the tower-output cache ('auto' = the library "
        "cache, 'none' = do not keep them)",
    )
    parser.set_defaults(func=run, training_flags=[])


def _training_arguments(flags: list[str], recipe: Recipe) -> Any:
    """``TrainingArguments`` from the recipe's defaults overridden by the user's flags."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments)
    try:
        (training_args, remaining) = parser.parse_args_into_dataclasses(
            args=recipe.training_flags() + flags, return_remaining_strings=True
        )
    except SystemExit as error:  # argparse already printed the message
        raise UserError("invalid TrainingArguments flags (see above)") from error
    if remaining:
        raise UserError(
            f"unknown options: {' '.join(remaining)} (see `multimodal-cat train --help`)"
        )
    return training_args


def _none(name: str | None) -> str | None:
    return None if name is None or name.lower() in ("", "none") else name


def _tag_columns(items: list[str]) -> dict[str, str]:
    columns = {}
    for item in items:
        attribute, _, column = item.partition("=")
        columns[attribute.strip()] = (column or attribute).strip()
    return columns


def _join_category_columns(rows: list[dict[str, Any]], spec: str) -> str:
    names = [c.strip() for c in spec.split(",") if c.strip()]
    missing = [c for c in names if rows and c not in rows[0]]
    if missing:
        raise UserError(f"category column(s) {missing} not in the feed; it has {sorted(rows[0])}")
    if len(names) == 1:
        return names[0]
    for row in rows:
        parts = [
            str(row[c]).strip() for c in names if row.get(c) is not None and str(row[c]).strip()
        ]
        row["_category_path"] = " > ".join(parts)
    return "_category_path"


def _label_space(taxonomy: str | None, rows: list[dict[str, Any]], column: str) -> Any:
    from multimodal_cat.modeling import LabelSpace

    if taxonomy:
        from multimodal_cat.taxonomy import Taxonomy

        try:
            return LabelSpace.from_taxonomy(Taxonomy.load(taxonomy))
        except (KeyError, OSError, ValueError) as error:
            raise UserError(f"cannot load taxonomy {taxonomy!r}: {error}") from error
    paths = sorted(
        {str(r[column]).strip() for r in rows if r.get(column) and str(r[column]).strip()}
    )
    if not paths:
        raise UserError(f"no categories in column {column!r}; give --taxonomy or fill the column")
    return LabelSpace.from_paths(paths, name="from-feed")


def balanced_class_weights(labels: list[int], num_nodes: int) -> list[float]:
    """``n / (k * count)`` per labelled node (k = distinct labels); 1.0 for unseen nodes."""
    counts = Counter(label for label in labels if label >= 0)
    total, distinct = sum(counts.values()), max(len(counts), 1)
    return [total / (distinct * counts[i]) if counts.get(i) else 1.0 for i in range(num_nodes)]


def _datasets(args: argparse.Namespace, seed: int, with_images: bool) -> tuple[Any, list, Any, Any]:
    """Read the feeds and build (label space, tag groups, train set, eval set or None)."""
    from multimodal_cat.training import FeedColumns, build_dataset, infer_tag_groups, read_table

    try:
        rows = read_table(args.feed)
        eval_rows = read_table(args.eval_feed) if args.eval_feed else None
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the feed: {error}") from error
    if with_images and not any(args.image_column in row for row in rows):
        raise UserError(
            f"the feed has no image column {args.image_column!r} (its columns: "
            f"{', '.join(sorted(rows[0])) if rows else 'none'}); name it with --image-column, "
            "or leave out --vision-encoder to train on the text alone"
        )
    category = _join_category_columns(rows, args.category_column)
    if eval_rows is not None:
        _join_category_columns(eval_rows, args.category_column)
    space = _label_space(args.taxonomy, rows, category)
    tag_columns = _tag_columns(args.tag_column)
    columns = FeedColumns(
        category=category,
        title=args.title_column,
        description=args.description_column,
        brand=args.brand_column,
        image=args.image_column if with_images else None,
        tags=tag_columns,
    )
    options = {"on_unknown": args.on_unknown, "image_root": args.image_root}
    try:
        groups = infer_tag_groups(rows, tag_columns, args.multi_valued_tag) if tag_columns else []
        train_set, report = build_dataset(rows, space, columns, tag_groups=groups, **options)
        eval_set = None
        if eval_rows is not None:
            eval_set, _ = build_dataset(eval_rows, space, columns, tag_groups=groups, **options)
    except ValueError as error:
        raise UserError(str(error)) from error
    if report.skipped:
        print(f"skipped {report.skipped} rows with unknown categories", file=sys.stderr)
    if eval_set is None and args.eval_split > 0:
        split = train_set.train_test_split(test_size=args.eval_split, seed=seed)
        train_set, eval_set = split["train"], split["test"]
    return space, groups, train_set, eval_set


# model config field -> the command's flag (its value is None unless the user gave it)
_MODEL_FLAGS = {
    "projection_dim": "projection_dim",
    "fusion_hidden_dim": "fusion_hidden_dim",
    "dropout": "head_dropout",
    "label_smoothing": "label_smoothing",
    "tag_loss_weight": "tag_loss_weight",
}


def _model_settings(args: argparse.Namespace, recipe: Recipe) -> dict[str, Any]:
    """Head settings: the user's flags where given, else the recipe's."""
    given = {field: getattr(args, flag) for field, flag in _MODEL_FLAGS.items()}
    return {name: recipe.model[name] if value is None else value for name, value in given.items()}


def _settings_line(recipe: Recipe, training_args: Any, settings: dict[str, Any]) -> str:
    """The values this run uses for what the recipe sets (the user's flags included)."""
    used = {}
    for name in recipe.training_settings():
        value = getattr(training_args, name)
        used[name] = getattr(value, "value", value)  # enums such as the scheduler type
    used.update({_MODEL_FLAGS[name].replace("_", "-"): value for name, value in settings.items()})
    listed = ", ".join(f"{name}={value}" for name, value in used.items())
    return f"settings ({recipe.name} recipe where no flag was given): {listed}"


def _model(
    args: argparse.Namespace, settings: dict[str, Any], space: Any, groups: list, labels: list[int]
) -> Any:
    from multimodal_cat.modeling import MultimodalCatModel

    weights = (
        balanced_class_weights(labels, len(space)) if args.class_weights == "balanced" else None
    )
    return MultimodalCatModel.from_encoders(
        _none(args.vision_encoder),
        _none(args.text_encoder),
        taxonomy=space,
        tags=groups,
        freeze_encoders=args.freeze_encoders,
        fusion_type=args.fusion,
        vision_pooling=args.vision_pooling,
        text_pooling=args.text_pooling,
        modality_dropout=args.modality_dropout,
        class_weights=weights,
        **settings,
    )


def _embedded(
    args: argparse.Namespace, training_args: Any, model: Any, processor: Any, *datasets: Any
) -> list[Any]:
    """The frozen towers' outputs for each dataset (the main process fills the cache first)."""
    from multimodal_cat.encoders import EmbeddingCache
    from multimodal_cat.training.cached import embed_dataset

    where = args.embedding_cache
    cache = None if where.lower() == "none" else EmbeddingCache(None if where == "auto" else where)
    out = []
    with training_args.main_process_first(desc="embedding the feed with the frozen towers"):
        for dataset in datasets:
            out.append(
                None
                if dataset is None
                else embed_dataset(dataset, model, processor, cache=cache, bf16=training_args.bf16)
            )
    return out


def _leave_process_group(wait: bool) -> None:
    """Close the process group of a multi-process launch (after waiting for every process).

    A process that exits with the group still open can abort in the group's background threads
    ("terminate called without an active exception"), failing a run that had finished. After an
    error there is no waiting: the other processes may never get there.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def run(args: argparse.Namespace) -> int:
    """Train, save the model and processor to ``--output_dir``, print the training metrics
    (``train_runtime``, ``train_loss``, ...) and, with an evaluation set, the ``eval_*`` ones;
    they are also written to ``all_results.json`` there."""
    finished = False
    try:
        code = _train(args)
        finished = True
        return code
    finally:
        _leave_process_group(wait=finished)


def _train(args: argparse.Namespace) -> int:
    from transformers import Trainer, set_seed

    from multimodal_cat.modeling import MultimodalCatProcessor
    from multimodal_cat.training import (
        EmbeddingCollator,
        MultimodalCatCollator,
        build_compute_metrics,
        recipe_for,
        repeat_imaged_rows,
    )

    recipe = recipe_for(args.freeze_encoders)
    training_args = _training_arguments(args.training_flags, recipe)
    vision, text = _none(args.vision_encoder), _none(args.text_encoder)
    if vision is None and text is None:
        raise UserError("give --text-encoder and/or --vision-encoder")
    if args.imaged_row_repeats < 1:
        raise UserError(f"--imaged-row-repeats must be 1 or more; got {args.imaged_row_repeats}")
    if args.imaged_row_repeats > 1 and vision is None:
        raise UserError("--imaged-row-repeats needs --vision-encoder (the model reads no images)")
    space, groups, train_set, eval_set = _datasets(args, training_args.seed, vision is not None)
    settings = _model_settings(args, recipe)
    if training_args.process_index == 0:
        print(_settings_line(recipe, training_args, settings), file=sys.stderr)
    set_seed(training_args.seed)  # the new head's initial weights follow --seed
    model = _model(args, settings, space, groups, list(train_set["labels"]))
    processor = MultimodalCatProcessor.from_encoders(
        vision, text, text_template=args.text_template, max_length=args.max_length
    )
    training_args.remove_unused_columns = False
    training_args.label_names = ["labels", "tag_labels"] if groups else ["labels"]
    metrics_fn = build_compute_metrics(space.parents, groups) if eval_set is not None else None
    collator: Any = MultimodalCatCollator(processor)
    if args.freeze_encoders:
        train_set, eval_set = _embedded(args, training_args, model, processor, train_set, eval_set)
        collator = EmbeddingCollator()
    if args.imaged_row_repeats > 1:
        train_set = repeat_imaged_rows(train_set, args.imaged_row_repeats)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        compute_metrics=metrics_fn,
    )
    metrics = dict(trainer.train().metrics)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        processor.save_pretrained(training_args.output_dir)
    if eval_set is not None:
        metrics.update(trainer.evaluate())
    if trainer.is_world_process_zero():
        trainer.save_metrics("all", metrics, combined=False)  # output_dir/all_results.json
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0
