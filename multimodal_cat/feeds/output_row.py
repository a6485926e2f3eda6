"""The output row of the feed job: its columns, and how a prediction fills them.

Every output row has ``row, id, status``, the prediction's ``category_id, category_path,
confidence, alternatives, tags, inputs`` (which of text and image the answer used), three columns per mapped tree (``<tree>_category_id``,
``_category_path``, ``_provenance``), ``needs_review, review_reason`` when the job routes rows to
people, then ``warnings, error`` and any input columns kept.

Example:
    >>> output_columns(["google"], review=True)[9:]
    ['google_category_id', 'google_category_path', 'google_provenance', 'needs_review', 'review_reason', 'warnings', 'error']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multimodal_cat.feeds.columns import column_key
from multimodal_cat.predictions import Prediction, same_tree

BASE_COLUMNS = (
    "row",
    "id",
    "status",
    "category_id",
    "category_path",
    "confidence",
    "alternatives",
    "tags",
    "inputs",
)
REVIEW_COLUMNS = ("needs_review", "review_reason")
END_COLUMNS = ("warnings", "error")


def mapping_columns(names: Sequence[str]) -> list[str]:
    """Output columns for each mapped taxonomy name."""
    return [
        f"{column_key(n)}_{part}"
        for n in names
        for part in ("category_id", "category_path", "provenance")
    ]


def output_columns(names: Sequence[str], keep: Sequence[str] = (), *, review: bool = False) -> list[str]:
    """All output columns, in order, for these mapped trees and kept input columns."""
    return [*BASE_COLUMNS, *mapping_columns(names), *(REVIEW_COLUMNS if review else ()), *END_COLUMNS, *keep]


matches = same_tree  # ``google`` names the mapping keyed ``google/2021-09-21``


def prediction_cells(prediction: Prediction, names: Sequence[str]) -> dict[str, Any]:
    """The cells a prediction fills: category, confidence, alternatives, tags, mapped trees."""
    cells: dict[str, Any] = {
        "category_id": prediction.category_id,
        "category_path": prediction.category_path,
        "confidence": round(float(prediction.confidence), 6),
        "alternatives": [
            {"id": a.id, "path": a.path, "score": round(float(a.score), 6)} for a in prediction.alternatives
        ],
        "tags": [
            {"attribute": t.attribute, "value": t.value, "score": round(float(t.score), 6)}
            for t in prediction.tags
        ],
        "inputs": prediction.inputs,
    }
    for name in names:
        mapped = next((m for k, m in prediction.mappings.items() if matches(name, k)), None)
        if mapped is not None:
            slug = column_key(name)
            cells[f"{slug}_category_id"] = "; ".join(mapped.target_ids)
            cells[f"{slug}_category_path"] = "; ".join(mapped.target_paths)
            cells[f"{slug}_provenance"] = mapped.provenance
    return cells
