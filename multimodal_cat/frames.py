"""Predictions as pandas tables, with the command line's output columns.

:func:`predictions_frame` is what ``Categorizer.predict(..., as_frame=True)`` returns: one row per
input, with the input's index, the columns of ``multimodal-cat categorize``'s output (their cells
come from the same :func:`~multimodal_cat.feeds.output_row.prediction_cells`), and flat columns a
spreadsheet user filters on: one per tree level (``level_1``...) and one per tag attribute
(``tag_color``..., the best value). ``alternatives`` and ``tags`` stay lists of dicts, which
``DataFrame.to_parquet`` stores as native lists of structs.

Example:
    >>> from multimodal_cat.predictions import Prediction
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree = Taxonomy.from_paths(["Toys > Dolls"])
    >>> frame = predictions_frame([Prediction("Toys > Dolls", "Toys > Dolls", 0.9)], [], index=["sku1"], taxonomy=tree)
    >>> frame.loc["sku1", ["category_path", "level_2", "status"]].tolist()
    ['Toys > Dolls', 'Dolls', 'ok']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multimodal_cat.errors import optional_import
from multimodal_cat.feeds.output_row import REVIEW_COLUMNS, output_columns, prediction_cells
from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy


def _pandas() -> Any:
    return optional_import("pandas", extra="feeds", purpose="as_frame=True")


def predictions_frame(
    predictions: Sequence[Prediction],
    products: Sequence[Product],
    *,
    index: Sequence[Any],
    taxonomy: Taxonomy,
    trees: Sequence[str] = (),
    routed: bool = False,
) -> Any:
    """One row per prediction, indexed like the input (see the module docstring).

    Args:
        predictions: The answers, in input order.
        products: The products they answer (their ``id`` fills the ``id`` column; may be empty).
        index: Row labels (the input DataFrame's or Series' index, or positions).
        taxonomy: The tree the categories belong to (for the level columns).
        trees: Mapped target trees, each with its ``<tree>_category_id/_path/_provenance``.
        routed: Add ``needs_review`` and ``review_reason``.
    """
    pd = _pandas()
    depth = max((c.depth for c in taxonomy), default=0)
    columns = [c for c in output_columns(trees, review=routed) if c != "row"]
    attributes = list(dict.fromkeys(t.attribute for p in predictions for t in p.tags))
    rows = []
    for position, prediction in enumerate(predictions):
        row: dict[str, Any] = dict.fromkeys(columns)
        row["id"] = products[position].id if position < len(products) else ""
        row.update(status=prediction.status, warnings=list(prediction.warnings), error=prediction.error)
        if prediction.status != "error":
            row.update(prediction_cells(prediction, trees))
            if routed:
                row.update(dict(zip(REVIEW_COLUMNS, (prediction.needs_review, prediction.review_reason), strict=True)))
        row.update(_levels(prediction.category_path, depth))
        row.update(_best_tags(prediction, attributes))
        rows.append(row)
    order = [*columns[:4], *(f"level_{d}" for d in range(1, depth + 1)), *columns[4:],
             *(f"tag_{a}" for a in attributes)]
    frame = pd.DataFrame(rows, columns=order, index=pd.Index(list(index)))
    frame["confidence"] = frame["confidence"].astype(float)
    return frame


def _levels(path: str, depth: int) -> dict[str, str | None]:
    names = path.split(" > ") if path else []
    return {f"level_{d}": names[d - 1] if d <= len(names) else None for d in range(1, depth + 1)}


def _best_tags(prediction: Prediction, attributes: Sequence[str]) -> dict[str, str | None]:
    best: dict[str, tuple[float, str]] = {}
    for tag in prediction.tags:
        if tag.attribute not in best or tag.score > best[tag.attribute][0]:
            best[tag.attribute] = (tag.score, tag.value)
    return {f"tag_{a}": best[a][1] if a in best else None for a in attributes}


def proba_frame(proba: np.ndarray, classes: Sequence[str], taxonomy: Taxonomy, index: Sequence[Any]) -> Any:
    """Probabilities as a DataFrame: the input's index, one column per category's full path.

    Example:
        >>> from multimodal_cat.taxonomy import Taxonomy
        >>> tree = Taxonomy.from_paths(["Toys > Dolls", "Toys > Blocks"])
        >>> proba_frame(np.array([[0.7, 0.3]]), ["Toys > Dolls", "Toys > Blocks"], tree, [0]).columns.tolist()
        ['Toys > Dolls', 'Toys > Blocks']
    """
    pd = _pandas()
    paths = [taxonomy[c].full_path if c in taxonomy else str(c) for c in classes]
    return pd.DataFrame(proba, columns=paths, index=pd.Index(list(index)))
