"""Reviewers' answers as records: read, write, and apply to training labels.

A :class:`Correction` says what a person decided about one product: ``accepted`` (the
library's category was right), ``changed`` (to another category) or ``skipped``. Corrections
are kept as JSON lines, one per product, so a team can collect them over many review rounds;
the latest answer for a product wins.

Example:
    >>> c = Correction(product_id="42", action="changed", category_id="tg-1", suggested_id="hw-3")
    >>> # a correction wins over the feed's own label
    >>> apply_corrections([{"id": "42", "category": "hw-3"}, {"id": "7", "category": "x"}], [c])
    [{'id': '42', 'category': 'tg-1'}, {'id': '7', 'category': 'x'}]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError

logger = logging.getLogger(__name__)

ACTIONS = ("accepted", "changed", "skipped")


class CorrectionError(MultimodalCatError, ValueError):
    """A corrections file or an annotation export is not what was expected."""


@dataclass(frozen=True)
class Correction:
    """One reviewer's answer about one product.

    Attributes:
        product_id: The product's id in the feed.
        action: ``accepted``, ``changed`` or ``skipped``.
        category_id: The category the reviewer settled on (empty when skipped).
        category_path: Its full path (trains a model whose label space is the feed's paths).
        suggested_id: The category the library had suggested.
        reviewer: Who answered (Label Studio's user id), when known.
        reviewed_at: When (ISO time), when known.
        title, description, brand: The product's text as the reviewer saw it (from the task).
        image: Its image as the feed named it, resolved: an absolute path or a URL (from the task).
    """

    product_id: str
    action: str
    category_id: str = ""
    category_path: str = ""
    suggested_id: str = ""
    reviewer: str = ""
    reviewed_at: str = ""
    title: str = ""
    description: str = ""
    brand: str = ""
    image: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise CorrectionError(f"expected an action among {ACTIONS}; found {self.action!r}")
        if self.action != "skipped" and not self.category_id:
            raise CorrectionError(f"product {self.product_id!r}: an {self.action} correction needs a category")

    @property
    def label(self) -> str | None:
        """The category to train on (its path when known, else its id); ``None`` when skipped."""
        return None if self.action == "skipped" else (self.category_path or self.category_id)

    @property
    def has_product(self) -> bool:
        """True when the correction carries the product itself (text or image) to train on."""
        return any(s.strip() for s in (self.title, self.description, self.brand, self.image))


def write_corrections(corrections: Iterable[Correction], path: str | Path, *, append: bool = True) -> Path:
    """Write corrections as JSON lines (appended by default, so rounds accumulate).

    The append is all or nothing: the lines are written, then synced; if that fails (a full
    disk), the file is cut back to its previous size, so a half-written line never stays
    for later rounds to append after. A torn last line left by an older writer is dropped, with
    a warning, before appending.

    Raises:
        CorrectionError: The file cannot be written (it is left as it was).
    """
    path = Path(path)
    with open(path, "ab" if append else "wb") as handle:
        start = _drop_torn_line(handle, path) if append else 0
        try:  # line by line (memory stays flat), synced at the end; undone on failure
            for correction in corrections:
                handle.write((json.dumps(asdict(correction), ensure_ascii=False) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as error:
            with contextlib.suppress(OSError):
                handle.truncate(start)
                os.fsync(handle.fileno())
            raise CorrectionError(
                f"{path}: cannot write the corrections ({error.strerror or error}); "
                "the file was left as it was"
            ) from None
    return path


def _drop_torn_line(handle: Any, path: Path) -> int:
    """Cut a last line that has no newline (a write cut short); returns the size to append at."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return 0
    with open(path, "rb") as reader:
        tail_start = max(size - (1 << 16), 0)
        reader.seek(tail_start)
        tail = reader.read()
        while not tail.endswith(b"\n") and b"\n" not in tail and tail_start > 0:
            tail_start = max(tail_start - (1 << 16), 0)
            reader.seek(tail_start)
            tail = reader.read()
    if tail.endswith(b"\n"):
        return size
    keep = tail_start + tail.rfind(b"\n") + 1
    logger.warning("%s: dropping a torn last line (%d bytes, a write cut short)", path, size - keep)
    handle.truncate(keep)
    handle.seek(keep)
    return keep


def read_corrections(path: str | Path) -> list[Correction]:
    """Read a corrections file; the latest line for a product wins.

    Raises:
        CorrectionError: a line is not a JSON object with the fields of :class:`Correction`
            (the message names the line).
    """
    try:
        return _read_corrections(path)
    except UnicodeDecodeError as err:
        raise CorrectionError(
            f"{path}: expected a corrections file in UTF-8 (JSON lines); found byte "
            f"0x{err.object[err.start]:02x}"
        ) from None


def _read_corrections(path: str | Path) -> list[Correction]:
    known = {f.name for f in fields(Correction)}
    latest: dict[str, Correction] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if not line.endswith("\n") and not _parses(line):
                logger.warning("%s: line %d is torn (a write cut short); ignored", path, number)
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise TypeError(type(record).__name__)
                correction = Correction(**{k: str(v) for k, v in record.items() if k in known})
            except (json.JSONDecodeError, TypeError) as err:
                raise CorrectionError(
                    f"{path}: line {number}: expected a JSON object with product_id and action; "
                    f"found {line[:80].strip()!r} ({err})"
                ) from None
            except CorrectionError as err:
                raise CorrectionError(f"{path}: line {number}: {err}") from None
            latest[correction.product_id] = correction
    return list(latest.values())


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def apply_corrections(
    rows: Iterable[Mapping[str, Any]],
    corrections: Iterable[Correction],
    *,
    id_column: str = "id",
    label_columns: Sequence[str] = ("category",),
) -> list[dict[str, Any]]:
    """Training rows with reviewers' labels: a correction wins over the row's own label.

    The label goes to the first of ``label_columns`` (the others are emptied, as the
    correction is a whole path). Skipped products keep their original label. Corrected
    products absent from ``rows`` are not added here: :func:`unseen_rows` makes rows of them.
    """
    labels = {c.product_id: c.label for c in corrections if c.label is not None}
    out = []
    for row in rows:
        row = dict(row)
        key = str(row.get(id_column, "")).strip()
        if key in labels:
            row.update({column: "" for column in label_columns[1:]})
            row[label_columns[0]] = labels[key]
        out.append(row)
    return out


def reviewed_ids(corrections: Iterable[Correction]) -> set[str]:
    """Products a person has already answered (skips included): not to be queued again."""
    return {c.product_id for c in corrections}


def unseen_rows(
    corrections: Iterable[Correction],
    known_ids: Iterable[str],
    columns: Mapping[str, str | None],
    *,
    label_columns: Sequence[str] = ("category",),
) -> tuple[list[dict[str, Any]], list[Correction]]:
    """Training rows for corrected products that are not among ``known_ids`` (not in the feed).

    Each row is built from what the correction carries (the task's title, description, brand
    and image). A correction that carries none of them (written before they were kept) cannot
    become a row: it is returned in the second list, for the caller to count and report.

    Args:
        corrections: The reviewers' answers (skipped ones are ignored).
        known_ids: Product ids of the feed's rows.
        columns: Product field (``id``, ``title``, ``description``, ``brand``, ``image``) ->
            the feed's column for it, ``None`` where the feed has none.
        label_columns: The feed's category column(s); the label goes to the first.

    Returns:
        ``(rows, refused)``.

    Example:
        >>> c = Correction(product_id="9", action="changed", category_id="t-1", title="Red mug")
        >>> unseen_rows([c], {"1"}, {"id": "sku", "title": "name", "image": None})[0]
        [{'sku': '9', 'category': 't-1', 'name': 'Red mug'}]
    """
    known = {str(k).strip() for k in known_ids}
    rows: list[dict[str, Any]] = []
    refused: list[Correction] = []
    for correction in corrections:
        if correction.label is None or correction.product_id in known:
            continue
        row = {columns.get("id") or "id": correction.product_id, label_columns[0]: correction.label}
        row.update({column: "" for column in label_columns[1:]})
        for key in ("title", "description", "brand", "image"):
            if columns.get(key) and getattr(correction, key).strip():
                row[columns[key]] = getattr(correction, key)
        if len(row) - len(label_columns) > 1:  # something to learn from besides id and label
            rows.append(row)
        else:
            refused.append(correction)
    return rows, refused
