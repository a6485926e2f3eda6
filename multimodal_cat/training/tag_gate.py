"""Let each tag use the product photo only where the photo helps, measured on held-out rows.

A tag head trained on fused features can learn the photo set's accidents instead of the
product: in the fashion data most imaged training rows are from one season, so a fused model
predicted that season for over half of all products with a photo. After training,
:func:`choose_text_only_tags` scores every tag attribute on the evaluation rows that have both
text and an image, once with the image and once from the text alone, and stores in
``config.text_only_tag_groups`` the attributes the image does not make more accurate. The
model then scores those attributes from the text whenever a product has text (a photo alone
still gets every tag from the photo).

Example:
    >>> figures = choose_text_only_tags(trainer, eval_set)  # doctest: +SKIP
    >>> model.config.text_only_tag_groups, figures["tag_season_accuracy_text_only"]  # doctest: +SKIP
    (['season'], 0.81)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multimodal_cat.modeling.labels import TagGroup, value_slices
from multimodal_cat.taxonomy.index import IGNORE_INDEX
from multimodal_cat.training.input_views import rows_with_text, without_images
from multimodal_cat.training.metrics import as_tuple
from multimodal_cat.training.sampling import rows_with_images

__all__ = ["choose_text_only_tags", "group_accuracy", "without_images"]


def group_accuracy(logits: np.ndarray, labels: np.ndarray, group: TagGroup, part: slice) -> float:
    """Share of known entries decided right: the argmax for a single-valued attribute, each
    value's sigmoid at 0.5 for a multi-valued one; NaN when no row states the attribute.

    Example:
        >>> group = TagGroup("color", ("red", "blue"))
        >>> group_accuracy(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1, 0], [1, 0]]),
        ...                group, slice(0, 2))
        0.5
    """
    scores, target = logits[:, part], labels[:, part]
    if group.multi_valued:
        known = target != IGNORE_INDEX
        return float(((scores > 0) == (target > 0.5))[known].mean()) if known.any() else np.nan
    rows = (target != IGNORE_INDEX).all(-1) & (target.sum(-1) > 0)
    if not rows.any():
        return np.nan
    return float((scores[rows].argmax(-1) == target[rows].argmax(-1)).mean())


def choose_text_only_tags(trainer: Any, eval_set: Any) -> dict[str, Any]:
    """Measure each tag with and without the image on ``eval_set``; gate off the image where it
    does not help (stored in ``trainer.model.config.text_only_tag_groups``).

    Returns:
        ``tag_<attribute>_accuracy_with_image`` / ``..._text_only`` per attribute, over the rows
        with both text and an image, and ``text_only_tags`` (the gated attributes, comma-joined).
    """
    config = trainer.model.config
    groups = config.tag_group_list
    if not groups or "tag_labels" not in eval_set.column_names:
        return {}
    both = rows_with_images(eval_set) & rows_with_text(eval_set)
    if not both.any():
        return {}
    config.text_only_tag_groups = []
    scored, labels = {}, None
    for name, dataset in (("with_image", eval_set), ("text_only", without_images(eval_set))):
        output = trainer.predict(dataset, metric_key_prefix="gate")
        scored[name] = np.asarray(as_tuple(output.predictions)[1])[both]
        labels = np.asarray(as_tuple(output.label_ids)[1])[both]
    figures: dict[str, Any] = {}
    gated = []
    for group, part in zip(groups, value_slices(groups), strict=True):
        accuracy = {name: group_accuracy(s, labels, group, part) for name, s in scored.items()}
        for name, value in accuracy.items():
            if not np.isnan(value):
                figures[f"tag_{group.attribute}_accuracy_{name}"] = value
        if not accuracy["with_image"] > accuracy["text_only"]:  # NaN: no evidence, text only
            gated.append(group.attribute)
    config.text_only_tag_groups = gated
    figures["text_only_tags"] = ",".join(gated)
    return figures
