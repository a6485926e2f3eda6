"""Training from Python on a DataFrame or records: the ``train`` command's own run, in process.

:func:`fit_checkpoint` is what :meth:`multimodal_cat.Categorizer.fit` calls. It writes the
products to a JSON lines feed in the output folder (a feed path is used as it is), turns the
keyword options into the ``train`` command's arguments and runs
:func:`~multimodal_cat.training.run.train_on_feed`: one code path for both, so the frozen-head
recipe, the views, the tag gate and the calibration are the same.

Example:
    >>> train_arguments("feed.jsonl", "ckpt", label=["kind", "leaf"], tags=["color"],
    ...                 columns={"title": "Name"}, image_root=None, options={"eval_split": 0.1},
    ...                 has_images=False)[:6]
    ['--feed', 'feed.jsonl', '--output_dir', 'ckpt', '--category-column', 'kind,leaf']
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.feeds.columns import FIELDS, ColumnMap
from multimodal_cat.training.errors import TrainingInputError

FEED_NAME = "fit_feed.jsonl"


def fit_checkpoint(
    data: Any,
    *,
    label: str | Sequence[str],
    output_dir: str | Path,
    tags: Sequence[str] = (),
    columns: Any = None,
    image_root: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> Path:
    """Train the frozen-head recipe on ``data`` and return the checkpoint folder.

    Raises:
        TrainingInputError: No label column, unusable columns, or an option ``train`` rejects.
    """
    from multimodal_cat.training.arguments import parse_train_args
    from multimodal_cat.training.run import leave_process_group, train_on_feed

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Path):
        feed, names = data, _feed_columns(data)
    else:  # relative image paths start from the working directory, as in predict
        feed, names = _write_feed(data, out / FEED_NAME)
        image_root = Path.cwd() if image_root is None else image_root
    cmap = columns if isinstance(columns, ColumnMap) else ColumnMap.from_args(columns)
    has_images = cmap.resolve(names).image is not None
    options = dict(options or {})
    tree = options.get("taxonomy")
    if tree is not None and not isinstance(tree, (str, Path)):  # a loaded Taxonomy
        options["taxonomy"] = str(tree.save(out / "taxonomy.csv"))
    argv = train_arguments(
        str(feed), str(out), label=label, tags=tags, columns=columns, image_root=image_root,
        options=options, has_images=has_images,
    )
    try:
        data_args, model_args, training_args = parse_train_args(argv)
    except SystemExit:
        raise TrainingInputError(f"train refused these options: {' '.join(argv)}") from None
    finished = False
    try:
        train_on_feed(data_args, model_args, training_args)
        finished = True
    finally:
        leave_process_group(wait=finished)
    return out


def train_arguments(
    feed: str,
    output_dir: str,
    *,
    label: str | Sequence[str],
    tags: Sequence[str],
    columns: Any,
    image_root: str | Path | None,
    options: dict[str, Any],
    has_images: bool,
) -> list[str]:
    """The ``train`` command line equivalent to :func:`fit_checkpoint`'s arguments."""
    labels = [label] if isinstance(label, str) else list(label)
    argv = ["--feed", feed, "--output_dir", output_dir, "--category-column", ",".join(labels)]
    for pair in _column_pairs(columns):
        argv += ["--column", pair]
    if image_root is not None:
        argv += ["--image-root", str(image_root)]
    for tag in tags:
        argv += ["--tag-column", tag]
    options.setdefault("freeze_encoders", True)
    options.setdefault("report_to", "none")
    options.setdefault("vision_encoder", "dinov2-small" if has_images else "none")
    for name, value in options.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            argv += [f"--{name}", str(item)]
    return argv


def _column_pairs(columns: Any) -> list[str]:
    if columns is None:
        return []
    if isinstance(columns, ColumnMap):
        return [f"{f}={getattr(columns, f)}" for f in FIELDS if getattr(columns, f)]
    if isinstance(columns, Mapping):
        return [f"{k}={v}" for k, v in columns.items()]
    return list(columns)


def _feed_columns(path: Path) -> list[str]:
    from multimodal_cat.feeds.read import FeedReader

    with FeedReader(path) as reader:
        return list(reader.columns)


def _write_feed(data: Any, path: Path) -> tuple[Path, list[str]]:
    """Records of ``data`` as JSON lines (NaN -> null); the column names, in order."""
    from multimodal_cat.inputs import as_items

    records = as_items(data)
    if not all(isinstance(r, Mapping) for r in records):
        raise TrainingInputError(
            "fit needs labelled records: a DataFrame, a list of dicts, a datasets.Dataset or a "
            f"pathlib.Path to a feed; found {type(data).__name__} holding titles without labels"
        )
    if not records:
        raise TrainingInputError("fit needs at least one labelled product; found none")
    names: dict[str, None] = {}
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            clean = {str(k): _json_value(v) for k, v in record.items()}
            names.update(dict.fromkeys(clean))
            handle.write(json.dumps(clean, ensure_ascii=False) + "\n")
    return path, list(names)


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return str(value)
