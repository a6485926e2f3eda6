"""The options of a training run, as dataclasses parsed next to ``TrainingArguments``.

As in the Hugging Face example scripts (``run_classification.py``), :class:`DataArguments`
(the feed and its columns) and :class:`ModelArguments` (towers, fusion, head) are parsed by
``HfArgumentParser`` together with ``transformers.TrainingArguments``: every ``Trainer`` flag
works on the command line next to the command's own. Each option is spelled with dashes or
underscores (``--eval-feed`` or ``--eval_feed``); abbreviations are refused. The training
defaults come from the recipe that fits ``--freeze-encoders``
(:mod:`multimodal_cat.training.recipes`); any flag the user gives wins.

Example:
    >>> data, model, training = parse_train_args(
    ...     ["--feed", "feed.csv", "--freeze-encoders", "--output_dir", "out"])
    >>> training.learning_rate, model.head_settings(recipe_for(True))["dropout"]
    (0.002, 0.3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from multimodal_cat.training.errors import TrainingInputError
from multimodal_cat.training.recipes import Recipe, recipe_for

__all__ = [
    "DESCRIPTION",
    "EPILOG",
    "DataArguments",
    "ModelArguments",
    "parse_train_args",
    "settings_line",
]

DESCRIPTION = "Fine-tune a categorizer on a product feed."
EPILOG = (
    "Hugging Face TrainingArguments flags are accepted too, e.g. --num_train_epochs 3 "
    "--learning_rate 3e-5 --per_device_train_batch_size 32 --eval_strategy epoch --seed 42 "
    "(see transformers.TrainingArguments). Their defaults are the Trainer's, except with "
    "--freeze-encoders, where the head's recipe sets learning rate, epochs, batch sizes, weight "
    "decay, warm-up and schedule (multimodal_cat.training.recipes)."
)
_APPEND = {"action": "append"}  # repeatable; HfArgumentParser adds nargs="+", so lists nest


def _flat(items: Sequence[Any]) -> list[str]:
    """``[["a"], ["b", "c"]]`` (repeated ``nargs="+"`` options) -> ``["a", "b", "c"]``."""
    out: list[str] = []
    for item in items:
        out.extend(str(i) for i in (item if isinstance(item, list) else [item]))
    return out


def _none(name: str | None) -> str | None:
    return None if name is None or name.lower() in ("", "none") else name


@dataclass
class DataArguments:
    """The feed a model trains on, and which of its columns hold what."""

    _argument_group_name: ClassVar[str] = "data"

    feed: str = field(metadata={"help": "training feed: CSV, TSV, JSONL or Parquet"})
    eval_feed: str | None = field(default=None, metadata={"help": "evaluation feed (same columns)"})
    eval_split: float = field(
        default=0.0, metadata={"help": "share of the feed held out for evaluation"}
    )
    taxonomy: str | None = field(
        default=None,
        metadata={
            "help": "shipped name (google, shopify) or file; default: paths found in the feed"
        },
    )
    format: str | None = field(
        default=None,
        metadata={"help": "feed format: csv, tsv, jsonl, parquet or xlsx (default: from the extension)"},
    )
    category_column: str = field(
        default="category",
        metadata={
            "help": "column with category ids or full paths; several comma-separated columns "
            "are joined as a path"
        },
    )
    column: list[str] = field(
        default_factory=list,
        metadata={
            **_APPEND,
            "metavar": "FIELD=NAME",
            "help": "input column for a field: id, title, description, brand, seller_category, "
            "image (as in categorize; fields not named are looked up under their usual names)",
        },
    )
    title_column: str | None = field(default=None, metadata={"help": "same as --column title=NAME"})
    description_column: str | None = field(
        default=None, metadata={"help": "same as --column description=NAME"}
    )
    brand_column: str | None = field(default=None, metadata={"help": "same as --column brand=NAME"})
    image_column: str | None = field(
        default=None, metadata={"help": "column with image paths; same as --column image=NAME"}
    )
    image_root: str | None = field(
        default=None, metadata={"help": "folder that relative image paths start from"}
    )
    tag_column: list[str] = field(
        default_factory=list,
        metadata={**_APPEND, "metavar": "ATTR[=COLUMN]", "help": "a tag attribute (repeatable)"},
    )
    multi_valued_tag: list[str] = field(
        default_factory=list, metadata={**_APPEND, "metavar": "ATTR", "help": "multi-valued tag"}
    )
    on_unknown: Literal["error", "skip"] = field(
        default="error", metadata={"help": "rows whose category is not in the taxonomy"}
    )
    corrections: str | None = field(
        default=None,
        metadata={
            "help": "reviewers' answers (multimodal-cat review import): a corrected product's "
            "label wins over the feed's, matched by product id"
        },
    )

    def __post_init__(self) -> None:
        self.column = _flat(self.column)
        self.tag_column = _flat(self.tag_column)
        self.multi_valued_tag = _flat(self.multi_valued_tag)
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError(f"--eval-split must be in [0, 1); got {self.eval_split}")

    def column_pairs(self) -> list[str]:
        """``FIELD=NAME`` pairs from ``--column`` and the ``--*-column`` flags.

        Raises:
            ValueError: The two ways name different columns for one field.
        """
        pairs = list(self.column)
        named = {pair.partition("=")[0].strip(): pair.partition("=")[2] for pair in pairs}
        for key in ("title", "description", "brand", "image"):
            value = getattr(self, f"{key}_column")
            if value is None:
                continue
            if named.get(key, value) != value:
                raise ValueError(
                    f"--{key}-column {value!r} and --column {key}={named[key]} name different "
                    "columns; give one"
                )
            pairs.append(f"{key}={value}")
        return pairs


@dataclass
class ModelArguments:
    """The model to build: towers, text template, fusion and head settings."""

    _argument_group_name: ClassVar[str] = "model"
    # head setting (a MultimodalCatConfig field) -> the field here that sets it (None = recipe)
    HEAD_FIELDS: ClassVar[dict[str, str]] = {
        "projection_dim": "projection_dim",
        "fusion_hidden_dim": "fusion_hidden_dim",
        "dropout": "head_dropout",
        "label_smoothing": "label_smoothing",
        "tag_loss_weight": "tag_loss_weight",
        "solo_mlps": "solo_mlps",
        "photo_trust_min_photos": "photo_trust_min_photos",
        "photo_weight": "photo_weight",
    }
    # architecture setting (a MultimodalCatConfig field) -> the field here that sets it
    ARCHITECTURE_FIELDS: ClassVar[dict[str, str]] = {
        "fusion_type": "fusion",
        "vision_pooling": "vision_pooling",
        "text_pooling": "text_pooling",
        "modality_dropout": "modality_dropout",
        "freeze_encoders": "freeze_encoders",
    }

    text_encoder: str = field(
        default="minilm", metadata={"help": "text tower (short name, hub id, folder, 'none')"}
    )
    vision_encoder: str = field(
        default="none", metadata={"help": "image tower (e.g. dinov2-small; 'none')"}
    )
    text_template: str = field(default="{title}. {brand}. {description}")
    max_length: int = field(default=128, metadata={"help": "token limit of the text"})
    fusion: Literal["concat", "gated"] = "concat"
    projection_dim: int | None = field(
        default=None, metadata={"help": "default: 256 with --freeze-encoders, else 512"}
    )
    fusion_hidden_dim: int | None = field(
        default=None, metadata={"help": "default: 512 with --freeze-encoders, else 1024"}
    )
    vision_pooling: Literal["cls", "mean", "cls_mean"] = "cls_mean"
    text_pooling: Literal["cls", "mean", "cls_mean"] = "mean"
    head_dropout: float | None = field(
        default=None, metadata={"help": "default: 0.3 with --freeze-encoders, else 0.1"}
    )
    modality_dropout: float = 0.0
    label_smoothing: float | None = field(
        default=None, metadata={"help": "default: 0.1 with --freeze-encoders, else 0"}
    )
    tag_loss_weight: float | None = field(
        default=None,
        metadata={
            "help": "weight of the tag loss next to the category loss (default: 0.5 with "
            "--freeze-encoders, else 1)"
        },
    )
    class_weights: Literal["none", "balanced"] = "none"
    imaged_row_repeats: int = field(
        default=1,
        metadata={
            "metavar": "N",
            "help": "show each training row that has an image N times per epoch (when most rows "
            "have no image, this gives the image pathway enough training steps)",
        },
    )
    solo_mlps: str | None = field(
        default=None,
        metadata={
            "metavar": "MODALITIES",
            "help": "comma-separated modalities whose rows, when they have only that one, get a "
            "fusion MLP of their own (default 'none')",
        },
    )
    photo_trust_min_photos: int | None = field(
        default=None,
        metadata={
            "metavar": "N",
            "help": "for a product with a title and a photo, answer from the title alone when "
            "the title's or the fused best category had fewer than N training photos (the photo "
            "cannot vouch for it; default: the recipe's 1, i.e. categories without training "
            "photos; 0 turns the rule off)",
        },
    )
    photo_weight: float | None = field(
        default=None,
        metadata={
            "metavar": "W",
            "help": "for a product with a title and a photo: prior weight of the fused answer "
            "against the title's alone, each also weighed by its own confidence (1 = fused "
            "only; default: the recipe's 0.6)",
        },
    )
    image_only_views: int | None = field(
        default=None,
        metadata={
            "metavar": "N",
            "help": "train on N extra copies of each imaged row with no text, so the checkpoint "
            "categorizes a photo alone (default: 1 with --freeze-encoders, else 0)",
        },
    )
    weak_text_views: int | None = field(
        default=None,
        metadata={
            "metavar": "N",
            "help": "train on N extra copies of each imaged row whose text is only the brand "
            "(else the title's first word), for photos with a title that says little "
            "(default: 1 with --freeze-encoders, else 0)",
        },
    )
    freeze_encoders: bool = field(
        default=False,
        metadata={
            "help": "train only fusion and heads: each tower runs once over the feed (cached on "
            "disk), then the head trains on the pooled outputs, by default with the frozen-head "
            "recipe (learning rate 2e-3, 10 epochs, batch 512 per device, cosine schedule; flags "
            "you give win)"
        },
    )
    scale_batch_to_rows: bool = field(
        default=True,
        metadata={
            "help": "with --freeze-encoders and no --per_device_train_batch_size: on a small "
            "feed, shrink the recipe's batch (512) so that an epoch takes at least "
            "20 steps (never under 32); --no-scale-batch-to-rows keeps 512"
        },
    )
    gate_tag_images: bool = field(
        default=True,
        metadata={
            "help": "with an evaluation set and an image tower: score each tag with and without "
            "the image on it after training, and keep the image only for the tags it makes more "
            "accurate (--no-gate-tag-images uses the image for every tag)"
        },
    )
    text_only_tags: str | None = field(
        default=None,
        metadata={
            "metavar": "ATTRS",
            "help": "comma-separated tag attributes to score from the text alone whenever a "
            "product has text, decided beforehand (e.g. on a split of newer products); replaces "
            "the gate that --gate-tag-images runs on the evaluation set ('none': no tag)",
        },
    )
    orientation_photos: int = field(
        default=256,
        metadata={
            "metavar": "N",
            "help": "with an image tower: after training, turn N training photos by 90, 180 "
            "and 270 degrees and fit a probe that tells a sideways photo, so the checkpoint "
            "reads such photos turned back upright (0: no probe)",
        },
    )
    calibrate: bool = field(
        default=True,
        metadata={
            "help": "with an evaluation set: fit the confidence temperatures on it after training "
            "and store them in the checkpoint (--no-calibrate keeps the raw scores)"
        },
    )
    embedding_cache: str = field(
        default="auto",
        metadata={
            "metavar": "DIR",
            "help": "with --freeze-encoders: folder of the tower-output cache ('auto' = the "
            "library cache, 'none' = do not keep them)",
        },
    )

    def __post_init__(self) -> None:
        if self.vision is None and self.text is None:
            raise ValueError("give --text-encoder and/or --vision-encoder")
        if self.imaged_row_repeats < 1:
            raise ValueError(
                f"--imaged-row-repeats must be 1 or more; got {self.imaged_row_repeats}"
            )
        for name in ("image_only_views", "weak_text_views"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be 0 or more; got {value}")
        if (self.image_only_views or self.weak_text_views) and self.vision is None:
            raise ValueError(
                "--image-only-views / --weak-text-views need --vision-encoder (no images to keep)"
            )
        if self.orientation_photos < 0:
            raise ValueError(f"--orientation-photos must be 0 or more; got {self.orientation_photos}")
        if self.imaged_row_repeats > 1 and self.vision is None:
            raise ValueError(
                "--imaged-row-repeats needs --vision-encoder (the model reads no images)"
            )

    @property
    def vision(self) -> str | None:
        """The image tower's name, ``None`` for none."""
        return _none(self.vision_encoder)

    @property
    def text(self) -> str | None:
        """The text tower's name, ``None`` for none."""
        return _none(self.text_encoder)

    def architecture(self) -> dict[str, Any]:
        """Architecture settings (config field -> value), as given."""
        return {name: getattr(self, flag) for name, flag in self.ARCHITECTURE_FIELDS.items()}

    def view_settings(self, recipe: Recipe) -> dict[str, int]:
        """Extra input views of imaged rows: the user's flags where given, else the recipe's."""
        out = {}
        for name in ("image_only_views", "weak_text_views"):
            value = getattr(self, name)
            out[name] = int(recipe.views.get(name, 0) if value is None else value)
        return out

    def head_settings(self, recipe: Recipe) -> dict[str, Any]:
        """Head settings (config field -> value): the user's flags where given, else the recipe's."""
        given = {name: getattr(self, flag) for name, flag in self.HEAD_FIELDS.items()}
        return {
            name: recipe.model[name] if value is None else value for name, value in given.items()
        }


def _parser(with_training: bool) -> Any:
    from transformers import HfArgumentParser

    types: list[Any] = [DataArguments, ModelArguments]
    if with_training:
        from transformers import TrainingArguments

        types.append(TrainingArguments)
    return HfArgumentParser(
        types,
        prog="multimodal-cat train",
        description=DESCRIPTION,
        epilog=EPILOG,
        allow_abbrev=False,
    )


def parse_train_args(argv: Sequence[str]) -> tuple[DataArguments, ModelArguments, Any]:
    """Parse the command's arguments into data, model and training arguments.

    ``--help`` prints the data and model options (without importing torch) and exits.

    Raises:
        TrainingInputError: An unknown option, or values that do not go together.
        SystemExit: ``--help``, or argparse refusing an option's value (it printed why).
    """
    argv = list(argv)
    try:  # the recipe follows --freeze-encoders: read the command's own options first
        first, model_args, _ = _parser(with_training=False).parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True
        )
        recipe = recipe_for(model_args.freeze_encoders)
        with_eval = bool(first.eval_feed) or first.eval_split > 0
        *parsed, remaining = _parser(with_training=True).parse_args_into_dataclasses(
            args=recipe.training_flags(with_eval) + argv, return_remaining_strings=True
        )
    except ValueError as error:
        raise TrainingInputError(str(error)) from None
    if remaining:
        raise TrainingInputError(
            f"unknown options: {' '.join(remaining)} (see `multimodal-cat train --help`)"
        )
    data_args, model_args, training_args = parsed
    if _given(argv, "per_device_train_batch_size"):  # the user's batch wins over the scaling
        model_args.scale_batch_to_rows = False
    return data_args, model_args, training_args


def _given(argv: Sequence[str], name: str) -> bool:
    """Whether ``--name`` (with dashes or underscores, ``=value`` or not) is in ``argv``."""
    flags = {a.split("=")[0].lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}
    return name in flags


def settings_line(recipe: Recipe, training_args: Any, head: dict[str, Any]) -> str:
    """The values a run uses for what the recipe sets (the user's flags included)."""
    used = {}
    for name in recipe.training_settings():
        value = getattr(training_args, name)
        used[name] = getattr(value, "value", value)  # enums such as the scheduler type
    fields = {**ModelArguments.HEAD_FIELDS, "image_only_views": "image_only_views"}
    fields["weak_text_views"] = "weak_text_views"
    flags = {name: flag.replace("_", "-") for name, flag in fields.items()}
    used.update({flags[name]: value for name, value in head.items()})
    listed = ", ".join(f"{name}={value}" for name, value in used.items())
    return f"settings ({recipe.name} recipe where no flag was given): {listed}"
