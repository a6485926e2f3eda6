"""Read a training feed through the same input layer as ``categorize``.

Files go through :class:`~multimodal_cat.feeds.read.FeedReader` (CSV, TSV, JSON lines, Parquet, Excel,
optionally gzipped) and their columns through :class:`~multimodal_cat.feeds.columns.ColumnMap`,
so ``--column title=Name`` means the same in both commands. A record the reader cannot parse
is kept out of training and listed in :attr:`FeedTable.errors` with its line. In Python,
tables in memory (a pandas DataFrame, a ``datasets.Dataset``, a list of dicts) are accepted too.

The label columns are never model inputs: when the usual names would make one of them the
product's ``seller_category`` (a column named ``category`` is both), that field stays empty.

Example:
    >>> table = read_feed([{"title": "Red shoe", "category": "Shoes"}])
    >>> table.columns, table.errors
    (['title', 'category'], [])
    >>> training_columns(ColumnMap(), table.columns, label_columns=["category"]).seller_category
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from multimodal_cat.feeds.columns import ColumnMap, FeedColumnError
from multimodal_cat.feeds.read import FeedFormatError, FeedReader
from multimodal_cat.training.errors import TrainingInputError

__all__ = ["FeedTable", "read_feed", "training_columns"]


@dataclass
class FeedTable:
    """The records of a training feed.

    Attributes:
        columns: Column names, in the feed's order.
        rows: One dict per parsed record.
        errors: One message per record that could not be parsed (with its line).
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)


def read_feed(table: Any, format: str | None = None) -> FeedTable:
    """Every record of a feed file, or of a table already in memory.

    Args:
        table: A feed path (CSV / TSV / JSON lines / Parquet, optionally ``.gz``), a pandas
            DataFrame, a ``datasets.Dataset`` or a sequence of dicts.
        format: ``csv``, ``tsv``, ``jsonl`` or ``parquet`` for a file; default: from its extension.

    Raises:
        TrainingInputError: The file is missing or its format is unknown.
    """
    if isinstance(table, (str, Path)):
        return _read_file(table, format)
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # pandas DataFrame
        return FeedTable([str(c) for c in table.columns], table.to_dict("records"))
    if hasattr(table, "to_list") and hasattr(table, "column_names"):  # datasets.Dataset
        return FeedTable(list(table.column_names), table.to_list())
    rows = [dict(row) for row in table]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return FeedTable(columns, rows)


def _read_file(path: str | Path, format: str | None) -> FeedTable:
    try:
        with FeedReader(path, format) as reader:
            rows, errors = [], []
            for record in reader:
                if record.values is None:
                    errors.append(record.error or f"line {record.line}: unreadable record")
                else:
                    rows.append(record.values)
            # JSON lines name their keys per record: a column may first appear further down
            columns = list(dict.fromkeys([*reader.columns, *(k for row in rows for k in row)]))
            return FeedTable(columns, rows, errors)
    except (FeedFormatError, FileNotFoundError) as error:
        raise TrainingInputError(f"cannot read the feed: {error}") from None


def training_columns(
    columns: ColumnMap,
    found: Sequence[str],
    *,
    label_columns: Sequence[str] = (),
    images: bool = True,
) -> ColumnMap:
    """``columns`` matched to the feed's columns, for training.

    Args:
        columns: The user's column map (fields not named are looked up under their usual names).
        found: The feed's columns.
        label_columns: Columns holding the category; never read as a product field by default.
        images: ``False`` for a model without an image tower (no image column is read).

    Raises:
        TrainingInputError: A column the user named is not in the feed, or the feed has no
            text or image column.
    """
    try:
        resolved = columns.resolve(list(found))
    except FeedColumnError as error:
        raise TrainingInputError(str(error)) from None
    if columns.seller_category is None and resolved.seller_category in label_columns:
        resolved = replace(resolved, seller_category=None)
    return resolved if images else replace(resolved, image=None)
