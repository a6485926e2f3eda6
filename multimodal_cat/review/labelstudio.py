"""Label Studio formats: the labeling configuration, review tasks out, annotations back in.

Label Studio (https://labelstud.io) is the annotation tool catalog teams already run. The
review queue goes to it as tasks (image, title, description, the top candidates) with the
library's best guess as a pre-annotation (``predictions`` with a score); reviewers accept it,
pick another category in a ``<Taxonomy>`` control over the whole tree, or skip. Its JSON export
comes back as :class:`~multimodal_cat.review.corrections.Correction` records, keyed by product id.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Toys > Construction Sets", "Hardware > Bricks"])
    >>> "<Taxonomy" in labeling_config(tree)
    True
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.review.corrections import Correction, CorrectionError
from multimodal_cat.review.task_images import TaskImageError, TaskImages, is_web_image
from multimodal_cat.taxonomy import Taxonomy

FROM_NAME = "category"  # the Taxonomy control's name in the labeling configuration
TO_NAME = "title"  # the object it labels
MODEL_VERSION = "multimodal_cat"


def labeling_config(taxonomy: Taxonomy, *, images: bool = True, leaves_only: bool = False) -> str:
    """The labeling configuration (XML) to create the Label Studio project with.

    The reviewer sees the product image, title, description, the seller's category and the
    library's top candidates, and picks one category in a searchable tree of the whole taxonomy.

    Args:
        taxonomy: The tree the products are categorized in.
        images: Show the product image (tasks carry it in ``data.image``).
        leaves_only: Allow only leaf categories (off: a coarse category is a valid answer).
    """
    view = ET.Element("View")
    if images:
        ET.SubElement(view, "Image", name="image", value="$image", maxWidth="360px")
    ET.SubElement(view, "Header", value="$title")
    ET.SubElement(view, "Text", name=TO_NAME, value="$title")
    ET.SubElement(view, "Text", name="description", value="$description")
    ET.SubElement(view, "Text", name="seller_category", value="$seller_category")
    ET.SubElement(view, "Header", value="Candidates", size="6")
    ET.SubElement(view, "Text", name="candidates", value="$candidates")
    control = ET.SubElement(
        view,
        "Taxonomy",
        name=FROM_NAME,
        toName=TO_NAME,
        maxUsages="1",
        leafsOnly="true" if leaves_only else "false",
        showFullPath="true",
        pathSeparator=" > ",
    )
    elements: dict[str, ET.Element] = {}
    for category in taxonomy:  # parents come before their children
        parent = elements.get(category.parent_id) if category.parent_id else control
        elements[category.id] = ET.SubElement(parent, "Choice", value=category.name)
    return ET.tostring(view, encoding="unicode")


def to_task(
    product: Product, prediction: Prediction, *, reason: str = "", images: TaskImages | None = None
) -> dict[str, Any]:
    """One Label Studio task: the product's fields, its candidates, the best guess pre-filled.

    ``images`` turns the product's image reference into one Label Studio can display (see
    :mod:`~multimodal_cat.review.task_images`); without it the reference is written as it is.
    ``data.image_source`` keeps the image as the feed named it (resolved), so a correction read
    back can train on it; an image Label Studio cannot serve is left out, with ``data.image_error``.
    """
    shown, problem = _image(product.image_ref, images)
    candidates = "\n".join(
        f"{rank}. {alt.path} ({alt.score:.2f})"
        for rank, alt in enumerate(prediction.alternatives, start=1)
    )
    data = {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "seller_category": product.seller_category,
        "image": shown,
        "image_source": images.source(product.image_ref) if images else product.image_ref,
        "candidates": candidates,
        "suggested_id": prediction.category_id,
        "suggested_path": prediction.category_path,
        "reason": reason,
    }
    result = [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "taxonomy",
            "value": {"taxonomy": [prediction.category_path.split(" > ")]},
            "score": round(float(prediction.confidence), 4),
        }
    ]
    predicted = {"model_version": MODEL_VERSION, "score": result[0]["score"], "result": result}
    if problem:
        data["image_error"] = problem
    return {"data": data, "predictions": [predicted]}


def _image(ref: str, images: TaskImages | None) -> tuple[str, str]:
    """``(what the task shows, why the image is left out or "")``."""
    if images is None:
        return ref, ""
    try:
        return images.url(ref), ""
    except TaskImageError as err:
        return "", str(err)


def to_tasks(
    products: Sequence[Product],
    predictions: Sequence[Prediction],
    *,
    reasons: Sequence[str] | None = None,
    images: TaskImages | None = None,
) -> list[dict[str, Any]]:
    """Tasks for many products (same order); ``reasons`` says why each needs review; ``images``
    makes their image references displayable (see :func:`to_task`)."""
    if len(products) != len(predictions):
        raise CorrectionError(
            f"expected one prediction per product; found {len(products)} products and "
            f"{len(predictions)} predictions"
        )
    reasons = list(reasons) if reasons is not None else [""] * len(products)
    return [
        to_task(p, q, reason=r, images=images)
        for p, q, r in zip(products, predictions, reasons, strict=True)
    ]


def write_tasks(tasks: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write tasks as the JSON list Label Studio's import accepts."""
    path = Path(path)
    path.write_text(json.dumps(list(tasks), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def read_export(export: str | Path | list[dict[str, Any]], taxonomy: Taxonomy) -> list[Correction]:
    """Corrections from Label Studio's JSON export (a path or the parsed list).

    Per task, the latest annotation wins: a cancelled one (the reviewer pressed *Skip*) is a
    ``skipped`` correction; a category equal to the suggested one is ``accepted``; any other is
    ``changed``. Tasks nobody annotated are left out.

    Raises:
        CorrectionError: the export is not a list of tasks, a task has no product id, or an
            annotation names a category that is not in ``taxonomy`` (all such tasks are listed).
    """
    tasks = _load_export(export)
    corrections, problems = [], []
    for number, task in enumerate(tasks, start=1):
        try:
            correction = _correction(task, taxonomy)
        except CorrectionError as err:
            problems.append(f"task {task.get('id', number)}: {err}")
            continue
        if correction is not None:
            corrections.append(correction)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CorrectionError(f"{len(problems)} task(s) of the Label Studio export cannot be read: {shown}")
    return corrections


def _load_export(export: str | Path | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(export, (str, Path)):
        try:
            export = json.loads(Path(export).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise CorrectionError(
                f"{export}: expected Label Studio's JSON export (a list of tasks); found invalid "
                f"JSON at line {err.lineno}: {err.msg}"
            ) from None
    if not isinstance(export, list) or not all(isinstance(t, dict) for t in export):
        raise CorrectionError(
            f"expected Label Studio's JSON export: a list of tasks; found {type(export).__name__}"
        )
    return export


def _correction(task: dict[str, Any], taxonomy: Taxonomy) -> Correction | None:
    data = task.get("data") or {}
    product_id = str(data.get("id", "")).strip()
    if not product_id:
        raise CorrectionError("expected the product id in data.id; found none")
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
    if not annotations:
        return None
    latest = max(annotations, key=lambda a: (str(a.get("updated_at", "")), a.get("id", 0)))
    common = {
        "product_id": product_id,
        "suggested_id": str(data.get("suggested_id", "")),
        "reviewer": str(latest.get("completed_by", "")),
        "reviewed_at": str(latest.get("updated_at", "")),
        **_product_fields(data),
    }
    path = _chosen_path(latest)
    if latest.get("was_cancelled") or path is None:
        return Correction(action="skipped", category_id="", **common)
    try:
        category = taxonomy.find(" > ".join(path))
    except KeyError:
        raise CorrectionError(
            f"expected a category of the tree {taxonomy.name!r}; found {' > '.join(path)!r}"
        ) from None
    action = "accepted" if category.id == common["suggested_id"] else "changed"
    return Correction(action=action, category_id=category.id, category_path=category.full_path, **common)


def _product_fields(data: dict[str, Any]) -> dict[str, str]:
    """The product the reviewer saw (text, image source), kept so a correction for a product
    outside the training feed can become a training row."""
    fields = {key: str(data.get(key) or "") for key in ("title", "description", "brand")}
    shown = str(data.get("image") or "")
    fields["image"] = str(data.get("image_source") or (shown if is_web_image(shown) else ""))
    return fields


def _chosen_path(annotation: dict[str, Any]) -> list[str] | None:
    for item in annotation.get("result") or []:
        if item.get("from_name") != FROM_NAME:
            continue
        chosen = (item.get("value") or {}).get("taxonomy") or []
        if chosen and isinstance(chosen[0], list) and chosen[0]:
            return [str(part) for part in chosen[0]]
    return None
