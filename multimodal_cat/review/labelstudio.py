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
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.review.corrections import Correction, CorrectionError
from multimodal_cat.review.task_images import TaskImageError, TaskImages, is_web_image
from multimodal_cat.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

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
    """Write tasks as the JSON list Label Studio's import accepts (one task at a time)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for number, task in enumerate(tasks):
            handle.write(("," if number else "") + "\n" + json.dumps(task, ensure_ascii=False, indent=1))
        handle.write("\n]\n")
    return path


def read_export(export: str | Path | list[dict[str, Any]], taxonomy: Taxonomy) -> list[Correction]:
    """Corrections from Label Studio's JSON export (a path or the parsed list).

    Per task, the latest annotation wins: a cancelled one (the reviewer pressed *Skip*) is a
    ``skipped`` correction; a category equal to the suggested one is ``accepted``; any other is
    ``changed``. Tasks nobody annotated are left out. A product answered in several tasks
    counts once: the newest answer (``updated_at``) wins, with a warning.

    Raises:
        CorrectionError: the export is not a list of tasks (or not UTF-8 JSON), a task has no
            product id, an annotation is malformed (``value.taxonomy`` not a list of paths,
            ``was_cancelled`` not a boolean...) or names a category that is not in ``taxonomy``
            (all such tasks are listed).
    """
    tasks = _load_export(export)
    chosen: dict[str, Correction] = {}
    answered: dict[str, int] = {}
    problems = []
    for number, task in enumerate(tasks, start=1):
        try:
            correction = _correction(task, taxonomy)
        except CorrectionError as err:
            problems.append(f"task {_task_name(task, number)}: {err}")
            continue
        if correction is None:
            continue
        key = correction.product_id
        answered[key] = answered.get(key, 0) + 1
        if key not in chosen or correction.reviewed_at >= chosen[key].reviewed_at:
            chosen[key] = correction
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CorrectionError(f"{len(problems)} task(s) of the Label Studio export cannot be read: {shown}")
    repeated = {k: n for k, n in answered.items() if n > 1}
    if repeated:
        names = ", ".join(f"{k!r} ({n} tasks)" for k, n in list(repeated.items())[:5])
        logger.warning(
            "%d product(s) answered in several tasks, each counted once with its newest answer "
            "(updated_at): %s", len(repeated), names,
        )
    return list(chosen.values())


def _task_name(task: Any, number: int) -> str:
    name = task.get("id", number) if isinstance(task, dict) else number
    return str(name) if isinstance(name, (str, int)) else str(number)


def _load_export(export: str | Path | list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """The export's tasks, one at a time (a file is streamed, never parsed whole)."""
    if isinstance(export, (str, Path)):
        return _checked_tasks(_stream_json_list(Path(export)), str(export))
    if not isinstance(export, list):
        raise CorrectionError(
            f"expected Label Studio's JSON export: a list of tasks; found {type(export).__name__}"
        )
    return _checked_tasks(iter(export), "the export")


def _checked_tasks(tasks: Iterator[Any], where: str) -> Iterator[dict[str, Any]]:
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise CorrectionError(
                f"{where}: expected Label Studio's JSON export, a list of tasks (objects); "
                f"item {number} is {type(task).__name__}"
            )
        yield task


def _stream_json_list(path: Path, chunk: int = 1 << 18) -> Iterator[Any]:
    """Items of the JSON list in ``path``, decoded one by one from a sliding buffer.

    Raises:
        CorrectionError: The file is not UTF-8, not a JSON list, cut short, invalid JSON (with
            its line), or nested too deeply to read.
    """
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as handle:
        reader = _Buffer(handle, chunk, path)
        first = reader.next_char()
        if first != "[":
            found = type(reader.decode(decoder)).__name__ if first else "an empty file"
            raise CorrectionError(
                f"{path}: expected Label Studio's JSON export: a list of tasks; found {found}"
            )
        reader.pos += 1
        if reader.next_char() == "]":
            return
        while True:
            yield reader.decode(decoder)
            separator = reader.next_char()
            if separator == "]":
                return
            if separator != ",":
                why = "expected ',' or ']' between tasks" if separator else "the list is never closed (cut short?)"
                raise reader.invalid(why)
            reader.pos += 1


class _Buffer:
    """A window over a text file for :func:`_stream_json_list`; tracks lines for messages."""

    def __init__(self, handle: Any, chunk: int, path: Path) -> None:
        self.handle, self.chunk, self.path = handle, chunk, path
        self.text, self.pos, self.lines_before = "", 0, 0

    def _more(self) -> bool:
        try:
            more = self.handle.read(self.chunk)
        except UnicodeDecodeError as err:
            raise CorrectionError(
                f"{self.path}: expected Label Studio's JSON export in UTF-8; found byte "
                f"0x{err.object[err.start]:02x}"
            ) from None
        if not more:
            return False
        self.lines_before += self.text.count("\n", 0, self.pos)
        self.text, self.pos = self.text[self.pos:] + more, 0
        return True

    def next_char(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.text) or not self._more():
                return self.text[self.pos : self.pos + 1]

    def decode(self, decoder: json.JSONDecoder) -> Any:
        self.next_char()  # raw_decode does not skip white space
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as err:
                cut = err.pos >= len(self.text) - 1 or err.msg.startswith("Unterminated string")
                if cut and self._more():
                    continue  # the item runs past the window: widen it and try again
                raise self.invalid(err.msg, err.pos) from None
            except RecursionError:
                raise CorrectionError(
                    f"{self.path}: expected Label Studio's JSON export; found JSON nested too deeply to read"
                ) from None
            self.pos = end
            return value

    def invalid(self, message: str, at: int | None = None) -> CorrectionError:
        line = self.lines_before + self.text.count("\n", 0, self.pos if at is None else at) + 1
        return CorrectionError(
            f"{self.path}: expected Label Studio's JSON export (a list of tasks); found invalid "
            f"JSON at line {line}: {message}"
        )


def _correction(task: dict[str, Any], taxonomy: Taxonomy) -> Correction | None:
    data = _shaped(task.get("data") or {}, dict, "data")
    raw_id = data.get("id", "")
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise CorrectionError(f"expected the product id in data.id (text or a number); found {raw_id!r}")
    product_id = str(raw_id).strip()
    if not product_id:
        raise CorrectionError("expected the product id in data.id; found none")
    annotations = _shaped(task.get("annotations") or [], list, "annotations")
    if not annotations:
        return None
    for annotation in annotations:
        _shaped(annotation, dict, "each annotation")
    latest = max(annotations, key=_annotation_order)
    common = {
        "product_id": product_id,
        "suggested_id": str(data.get("suggested_id", "")),
        "reviewer": str(latest.get("completed_by", "")),
        "reviewed_at": str(latest.get("updated_at", "")),
        **_product_fields(data),
    }
    cancelled = latest.get("was_cancelled", False)
    if not isinstance(cancelled, bool) and cancelled is not None:
        raise CorrectionError(f"expected was_cancelled true or false; found {cancelled!r}")
    path = _chosen_path(latest)
    if cancelled or path is None:
        return Correction(action="skipped", category_id="", **common)
    try:
        category = taxonomy.find(" > ".join(path))
    except KeyError:
        raise CorrectionError(
            f"expected a category of the tree {taxonomy.name!r}; found {' > '.join(path)!r}"
        ) from None
    action = "accepted" if category.id == common["suggested_id"] else "changed"
    return Correction(action=action, category_id=category.id, category_path=category.full_path, **common)


KEPT_DESCRIPTION = 1_000  # characters of a reviewed product's description kept in its correction


def _product_fields(data: dict[str, Any]) -> dict[str, str]:
    """The product the reviewer saw (text, image source), kept so a correction for a product
    outside the training feed can become a training row. The description is kept up to
    :data:`KEPT_DESCRIPTION` characters: more than a text tower reads (128 tokens by default),
    and a large export's corrections stay small in memory."""
    fields = {key: str(data.get(key) or "") for key in ("title", "description", "brand")}
    fields["description"] = fields["description"][:KEPT_DESCRIPTION]
    shown = str(data.get("image") or "")
    fields["image"] = str(data.get("image_source") or (shown if is_web_image(shown) else ""))
    return fields


def _shaped(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        expected = {dict: "an object", list: "a list"}[kind]
        raise CorrectionError(f"expected {name} to be {expected}; found {type(value).__name__}")
    return value


def _annotation_order(annotation: dict[str, Any]) -> tuple[str, int, str]:
    """Newest last: by ``updated_at``, then by id (numbers and text ids never compared)."""
    ident = annotation.get("id", 0)
    number = ident if isinstance(ident, int) and not isinstance(ident, bool) else -1
    return str(annotation.get("updated_at") or ""), number, str(ident)


def _chosen_path(annotation: dict[str, Any]) -> list[str] | None:
    """The path the reviewer picked; ``None`` when the annotation holds no category."""
    for item in _shaped(annotation.get("result") or [], list, "result"):
        if not isinstance(item, dict) or item.get("from_name") != FROM_NAME:
            continue
        value = _shaped(item.get("value") or {}, dict, "value")
        chosen = _shaped(value.get("taxonomy") or [], list, "value.taxonomy")
        if not chosen:
            continue
        first = chosen[0]
        if not isinstance(first, list) or not first or not all(isinstance(p, str) for p in first):
            raise CorrectionError(
                f"expected value.taxonomy to be a list of paths (lists of names); found {chosen!r:.80}"
            )
        return list(first)
    return None
