"""One training run from parsed arguments: feeds -> datasets -> model -> ``Trainer`` -> checkpoint.

This is what ``multimodal-cat train`` does after parsing its flags (see
:mod:`multimodal_cat.training.arguments`). The processor is the ``Trainer``'s
``processing_class``, so every ``checkpoint-*`` folder, the final folder and what
``--push_to_hub`` uploads hold it next to the model, and each loads with
``Categorizer.from_pretrained``.

Example:
    >>> data, model, training = parse_train_args(["--feed", "feed.csv", "--output_dir", "out"])  # doctest: +SKIP
    >>> train_on_feed(data, model, training)["train_loss"]  # doctest: +SKIP
    0.83
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import (
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from multimodal_cat._progress import bars_enabled, follow_switch, info
from multimodal_cat.encoders._base import use_bf16
from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.modeling import LabelSpace, MultimodalCatModel, MultimodalCatProcessor, TagGroup
from multimodal_cat.modeling.card import write_model_card
from multimodal_cat.training.arguments import DataArguments, ModelArguments, settings_line
from multimodal_cat.training.collator import EmbeddingCollator, MultimodalCatCollator
from multimodal_cat.training.data import build_dataset
from multimodal_cat.training.errors import TrainingDivergedError, TrainingInputError
from multimodal_cat.training.feed import FeedTable, read_feed, training_columns
from multimodal_cat.training.label_space import (
    balanced_class_weights,
    category_columns,
    check_category_columns,
    label_space_for,
    leaf_photo_counts,
)
from multimodal_cat.training.metrics import build_compute_metrics
from multimodal_cat.training.recipes import MIN_STEPS_PER_EPOCH, batch_for_rows, recipe_for
from multimodal_cat.training.sampling import add_input_views, repeat_imaged_rows, rows_with_images
from multimodal_cat.training.tags import infer_tag_groups, tag_columns

__all__ = [
    "CardTrainer",
    "ModelCardCallback",
    "TrainingSets",
    "leave_process_group",
    "load_training_sets",
    "train_on_feed",
]


@dataclass
class TrainingSets:
    """The label space, tag groups and datasets of a run (``eval`` is ``None`` without one)."""

    space: LabelSpace
    groups: list[TagGroup]
    train: Any
    eval: Any


def _column_map(data_args: DataArguments) -> ColumnMap:
    try:
        columns = ColumnMap.from_args(data_args.column_pairs())
    except (FeedColumnError, ValueError) as error:
        raise TrainingInputError(str(error)) from None
    return replace(columns, tags=tag_columns(data_args.tag_column))


def _with_corrections(feed: FeedTable, path: str, columns: ColumnMap, names: list[str]) -> FeedTable:
    """The feed with reviewers' labels applied (see :func:`multimodal_cat.review.apply_corrections`),
    plus a training row for each corrected product that is not in the feed and whose correction
    carries its text or image (:func:`multimodal_cat.review.unseen_rows`); the others are counted."""
    from multimodal_cat.review import (
        CorrectionError,
        apply_corrections,
        read_corrections,
        unseen_rows,
    )

    if columns.id is None:
        raise TrainingInputError(
            f"--corrections needs a product id column to match answers to rows; the feed's "
            f"columns are {', '.join(feed.columns)} (name it with --column id=NAME)"
        )
    try:
        corrections = read_corrections(path)
    except (CorrectionError, OSError) as error:
        raise TrainingInputError(str(error)) from None
    rows = apply_corrections(feed.rows, corrections, id_column=columns.id, label_columns=names)
    ids = {str(row.get(columns.id, "")).strip() for row in feed.rows}
    fields = {key: getattr(columns, key) for key in ("id", "title", "description", "brand", "image")}
    added, refused = unseen_rows(corrections, ids, fields, label_columns=names)
    used = sum(c.label is not None and c.product_id in ids for c in corrections)
    skipped = sum(c.label is None for c in corrections)
    info(f"applied {used:,} reviewed labels from {path} to the feed's rows; added {len(added):,} "
         f"reviewed products that are not in the feed as training rows; {skipped:,} answers skipped "
         "by the reviewer")
    if refused:
        print(f"refused {len(refused):,} reviewed labels for products that are not in the feed: their "
              f"answers carry no title or image to train on (e.g. product {refused[0].product_id!r}; "
              "answers imported before this version keep only the id: add those products to the feed)",
              file=sys.stderr)
    return replace(feed, rows=rows + added)


def load_training_sets(data_args: DataArguments, seed: int, with_images: bool) -> TrainingSets:
    """Read the feeds and build the label space, tag groups, training and evaluation sets.

    Raises:
        TrainingInputError: A feed, column or category the run cannot use.
    """
    feed = read_feed(data_args.feed, data_args.format)
    eval_feed = read_feed(data_args.eval_feed, data_args.format) if data_args.eval_feed else None
    columns = _column_map(data_args)
    names = category_columns(data_args.category_column)
    check_category_columns(names, feed.columns)
    resolved = training_columns(columns, feed.columns, label_columns=names, images=with_images)
    if data_args.corrections:
        feed = _with_corrections(feed, data_args.corrections, resolved, names)
    if with_images and resolved.image is None:
        raise TrainingInputError(
            f"the feed has no image column 'image' (its columns: "
            f"{', '.join(sorted(feed.columns)) or 'none'}); name it with --image-column, "
            "or leave out --vision-encoder to train on the text alone"
        )
    try:
        space = label_space_for(data_args.taxonomy, feed.rows, names)
        groups = (
            infer_tag_groups(feed.rows, columns.tags, data_args.multi_valued_tag)
            if columns.tags
            else []
        )
        options = {
            "category": names,
            "tag_groups": groups,
            "on_unknown": data_args.on_unknown,
            "image_root": data_args.image_root,
            "images": with_images,
        }
        train_set, report = build_dataset(feed, space, columns, **options)
        eval_set = (
            None if eval_feed is None else build_dataset(eval_feed, space, columns, **options)[0]
        )
    except (FeedColumnError, ValueError) as error:
        raise TrainingInputError(str(error)) from None
    if report.malformed:
        info(f"skipped {len(report.malformed)} unreadable records, e.g. {report.malformed[0]}")
    unknown = sum(report.unknown_categories.values())
    if unknown:
        info(f"skipped {unknown} rows with unknown categories")
    if eval_set is None and data_args.eval_split > 0:
        split = train_set.train_test_split(test_size=data_args.eval_split, seed=seed)
        train_set, eval_set = split["train"], split["test"]
    return TrainingSets(space, groups, train_set, eval_set)


def _model(model_args: ModelArguments, head: dict[str, Any], sets: TrainingSets) -> Any:
    weights = None
    if model_args.class_weights == "balanced":
        weights = balanced_class_weights(list(sets.train["labels"]), len(sets.space))
    photos = None
    if model_args.vision is not None and model_args.text is not None:
        photos = leaf_photo_counts(
            list(sets.train["labels"]), rows_with_images(sets.train), sets.space.leaves
        )
    settings = {
        **model_args.architecture(), **head, "class_weights": weights, "leaf_photo_counts": photos
    }
    return MultimodalCatModel.from_encoders(
        model_args.vision, model_args.text, taxonomy=sets.space, tags=sets.groups, **settings
    )


def _embedding_cache(model_args: ModelArguments) -> Any:
    """The tower-output cache ``--embedding-cache`` names (``None`` for 'none')."""
    from multimodal_cat.encoders import EmbeddingCache

    where = model_args.embedding_cache
    return None if where.lower() == "none" else EmbeddingCache(None if where == "auto" else where)


def _embedded(
    model_args: ModelArguments,
    training_args: TrainingArguments,
    model: Any,
    processor: Any,
    *datasets: Dataset | None,
) -> list[Any]:
    """The frozen towers' outputs for each dataset (the main process fills the cache first)."""
    from multimodal_cat.training.cached import embed_dataset

    cache = _embedding_cache(model_args)
    out = []
    with training_args.main_process_first(desc="embedding the feed with the frozen towers"):
        for dataset in datasets:
            out.append(
                None
                if dataset is None
                else embed_dataset(dataset, model, processor, cache=cache, bf16=training_args.bf16)
            )
    return out


class CardTrainer(Trainer):
    """A ``Trainer`` whose ``push_to_hub`` uploads the model's own card (``README.md`` of
    :mod:`multimodal_cat.modeling.card`) instead of the generic one ``Trainer`` writes, and
    whose ``checkpoint-*`` folders of a frozen-encoder run hold only the trainable part (the
    towers are the encoders' weights, unchanged: ``config.towers_referenced`` loads them from
    there), so a run's folder is not the towers saved once per checkpoint."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self.accelerator.unwrap_model(self.model)
        folder = Path(output_dir or self.args.output_dir)
        checkpoint = folder.name.startswith(f"{PREFIX_CHECKPOINT_DIR}-") and folder.parent == Path(
            self.args.output_dir
        )
        config = getattr(model, "config", None)
        if not (checkpoint and state_dict is None and getattr(config, "freeze_encoders", False)):
            super()._save(output_dir, state_dict)
            return
        config.towers_referenced = True
        try:
            super()._save(output_dir, model.trainable_state_dict())
        finally:
            config.towers_referenced = False

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        if self.is_world_process_zero():
            write_model_card(
                self.args.output_dir, self.model.config, model_id=self.hub_model_id or None
            )


class ModelCardCallback(TrainerCallback):
    """Rewrites each ``checkpoint-*`` folder's card with the run's metrics so far (the model's
    ``save_pretrained`` wrote it before the ``Trainer`` saved ``trainer_state.json``)."""

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and model is not None and folder.is_dir():
            write_model_card(folder, model.config)


class _ProcessorSaver:
    """Saves a processor without a tokenizer for the ``Trainer``.

    The ``Trainer`` aligns a ``ProcessorMixin``'s tokenizer with the model config and fails when
    it is ``None`` (an image-only model); through this object it only saves the processor.
    """

    def __init__(self, processor: MultimodalCatProcessor) -> None:
        self.processor = processor

    def save_pretrained(self, save_directory: str, **kwargs: Any) -> Any:
        return self.processor.save_pretrained(save_directory, **kwargs)


def _with_views(train_set: Dataset, views: dict[str, int]) -> Dataset:
    """The training set with its image-only and weak-text views of imaged rows."""
    return add_input_views(
        train_set, image_only=views["image_only_views"], weak_text_views=views["weak_text_views"]
    )


def _trainer(
    model_args: ModelArguments,
    training_args: TrainingArguments,
    sets: TrainingSets,
    model: Any,
    processor: MultimodalCatProcessor,
) -> Trainer:
    training_args.remove_unused_columns = False
    metrics_fn = None
    if sets.eval is not None:
        metrics_fn = build_compute_metrics(sets.space.parents, sets.groups)
    train_set, eval_set = sets.train, sets.eval
    collator: Any = MultimodalCatCollator(processor)
    if model_args.freeze_encoders:
        train_set, eval_set = _embedded(
            model_args, training_args, model, processor, train_set, eval_set
        )
        collator = EmbeddingCollator()
    if model_args.imaged_row_repeats > 1:
        train_set = repeat_imaged_rows(train_set, model_args.imaged_row_repeats)
    saver = processor if processor.tokenizer is not None else _ProcessorSaver(processor)
    trainer = CardTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=saver,  # saved with every checkpoint, before any upload
        compute_metrics=metrics_fn,
        callbacks=[ModelCardCallback()],
    )
    if not bars_enabled():  # --quiet: neither the bars nor the log lines they print
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_on_feed(
    data_args: DataArguments, model_args: ModelArguments, training_args: TrainingArguments
) -> dict[str, float]:
    """Train, save model and processor to ``training_args.output_dir``, return the metrics.

    The metrics are the training ones (``train_runtime``, ``train_loss``...) and, with an
    evaluation set, the ``eval_*`` ones; they are also written to ``all_results.json`` there.

    Raises:
        TrainingInputError: A feed, column or category the run cannot use.
        TrainingDivergedError: A training or evaluation loss is not finite (nothing saved).
    """
    follow_switch()  # --quiet reaches the bars of datasets' map, imported with this module
    recipe = recipe_for(model_args.freeze_encoders)
    sets = load_training_sets(data_args, training_args.seed, model_args.vision is not None)
    head = model_args.head_settings(recipe)
    both = model_args.vision is not None and model_args.text is not None
    views = model_args.view_settings(recipe) if both else {}
    if training_args.process_index == 0:
        info(settings_line(recipe, training_args, {**head, **views}))
    training_args.bf16 = use_bf16(training_args.bf16, training_args.device)
    set_seed(training_args.seed)  # the new head's initial weights follow --seed
    model = _model(model_args, head, sets)
    if model_args.text_only_tags is not None:  # decided beforehand: no gate after training
        _set_text_only_tags(model, model_args.text_only_tags, sets.groups)
    if views:  # after the class weights, which count each product once
        sets = replace(sets, train=_with_views(sets.train, views))
    if model_args.freeze_encoders and model_args.scale_batch_to_rows:
        rows = len(sets.train)
        size = batch_for_rows(rows, training_args.per_device_train_batch_size, training_args.world_size)
        if size != training_args.per_device_train_batch_size:
            info(f"{rows:,} training rows: batch {size} per device so an epoch takes at least "
                 f"{MIN_STEPS_PER_EPOCH} steps (--per_device_train_batch_size to choose)")
            training_args.per_device_train_batch_size = size
    processor = MultimodalCatProcessor.from_encoders(
        model_args.vision,
        model_args.text,
        text_template=model_args.text_template,
        max_length=model_args.max_length,
    )
    trainer = _trainer(model_args, training_args, sets, model, processor)
    metrics = dict(trainer.train().metrics)
    _check_converged(metrics, "training")
    if model_args.vision is not None and model_args.orientation_photos:
        from multimodal_cat.training.orientation import fit_orientation_probe

        metrics.update(fit_orientation_probe(
            model, processor, sets.train, photos=model_args.orientation_photos,
            cache=_embedding_cache(model_args), seed=training_args.seed,
        ))
    if sets.eval is not None:  # one pass over the eval set: its metrics, and the calibration
        gate = model_args.gate_tag_images and model_args.text_only_tags is None
        if gate and model_args.vision is not None and sets.groups:
            from multimodal_cat.training.tag_gate import choose_text_only_tags

            metrics.update(choose_text_only_tags(trainer, trainer.eval_dataset))
        evaluated = trainer.predict(trainer.eval_dataset, metric_key_prefix="eval")
        metrics.update(evaluated.metrics)
        _check_converged(metrics, "evaluation")
        if model_args.calibrate:
            from multimodal_cat.training.calibrate import calibrate

            figures = calibrate(model, evaluated)
            metrics.update({f"calibration_{k}": v for k, v in figures.items()})
            if both:
                from multimodal_cat.training.calibrate import calibrate_by_input

                figures = calibrate_by_input(trainer, trainer.eval_dataset)
                metrics.update({f"calibration_{k}": v for k, v in figures.items()})
    if trainer.is_world_process_zero():  # first: the model card reads it
        trainer.save_metrics("all", metrics, combined=False)  # output_dir/all_results.json
    trainer.save_model(training_args.output_dir)  # with processor and card; pushes with --push_to_hub
    return metrics


def _set_text_only_tags(model: Any, names: str, groups: list[TagGroup]) -> None:
    """``--text-only-tags``: the attributes scored from the text alone (checked against the tags)."""
    chosen = [n.strip() for n in names.split(",") if n.strip() and n.strip().lower() != "none"]
    known = [g.attribute for g in groups]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise TrainingInputError(
            f"--text-only-tags names {', '.join(unknown)}, which the run does not tag; its tags "
            f"are {', '.join(known) or 'none'}"
        )
    model.config.text_only_tag_groups = chosen


def _check_converged(metrics: dict[str, Any], step: str) -> None:
    """Refuse a diverged run (a loss that is NaN or infinite) before anything is saved."""
    bad = {k: v for k, v in metrics.items() if k.endswith("loss") and not math.isfinite(float(v))}
    if bad:
        found = ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
        raise TrainingDivergedError(
            f"training diverged: after {step}, {found}; nothing was saved (no model, no "
            "confidence thresholds). Lower --learning_rate (or check the feed) and train again"
        )


def leave_process_group(wait: bool) -> None:
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
