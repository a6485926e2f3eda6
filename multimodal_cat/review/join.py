"""Join a feed with its ``categorize`` output, by row number and product id, streaming both.

``review tasks FEED PREDICTIONS`` needs each queued prediction next to its product. The
output's ``row`` says where the product is in the feed, and its ``id`` must be that product's
id: predictions of another feed (or of the same feed edited since) are refused with the rows
that disagree, never attached to the wrong products.

Memory holds the id of every prediction row and the full rows of the queued ones only; the
feed is streamed once.

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "feed.csv").write_text("id,title\\na,Mug\\nb,Shirt\\n")
    >>> _ = (folder / "out.jsonl").write_text(
    ...     '{"row": 1, "id": "a", "category_id": "5", "category_path": "Kitchen > Mugs"}\\n'
    ...     '{"row": 2, "id": "b", "category_id": "2", "category_path": "Apparel > Shirts"}\\n')
    >>> pairs, total = join_predictions(folder / "feed.csv", folder / "out.jsonl", wanted=lambda r: r["row"] == 2)
    >>> [(product.title, row["category_path"]) for product, row in pairs], total
    ([('Shirt', 'Apparel > Shirts')], 2)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.products import Product

_SHOWN = 3  # disagreeing rows quoted in the message


class JoinError(MultimodalCatError, ValueError):
    """The predictions cannot be read, or they are not the predictions of this feed."""


def join_predictions(
    feed: str | Path,
    predictions: str | Path,
    *,
    columns: Iterable[str] | None = None,
    wanted: Callable[[dict[str, Any]], bool] = lambda row: True,
) -> tuple[list[tuple[Product, dict[str, Any]]], int]:
    """The ``(product, prediction row)`` pairs whose prediction row is ``wanted``.

    Args:
        feed: The feed that was categorized.
        predictions: Its ``categorize`` output (CSV, JSON lines or Parquet).
        columns: ``field=Column`` pairs, as given to ``categorize``.
        wanted: Picks the prediction rows to return (e.g. the ones needing review).

    Returns:
        The pairs in feed order, and the number of prediction rows read.

    Raises:
        JoinError: A prediction row lacks ``row`` or ``category_path``, the file cannot be
            parsed, or a row's ``id`` is not the id of the product at that row of the feed.
    """
    ids, kept, total = _read_predictions(predictions, wanted)
    pairs, wrong = _match_feed(feed, columns, ids, kept)
    count = len(wrong) + len(ids)  # ids left: rows the feed does not have
    if count:
        wrong += [(row, ids[row], None) for row in sorted(ids)[:_SHOWN]]
        raise JoinError(_mismatch_message(feed, predictions, wrong, count))
    return pairs, total


def _read_predictions(
    path: str | Path, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[dict[int, str], dict[int, dict[str, Any]], int]:
    from multimodal_cat.feeds.write import read_output

    ids: dict[int, str] = {}
    kept: dict[int, dict[str, Any]] = {}
    total = 0
    rows = read_output(path)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except KeyError as err:
            raise JoinError(f"{path}: expected the `categorize` output with a {err} column") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise JoinError(f"{path}: expected the `categorize` output; record {total + 1} cannot be read ({err})") from None
        total += 1
        number = _row_number(row, path, total)
        ids[number] = str(row.get("id") or "")
        if row.get("category_id") and wanted(row):
            kept[number] = row
    return ids, kept, total


def _row_number(row: Any, path: str | Path, record: int) -> int:
    if not isinstance(row, dict) or "row" not in row or "category_path" not in row:
        raise JoinError(
            f"{path}: record {record}: expected the `categorize` output (columns row, id, "
            f"category_path...); found {_short(row)}"
        )
    try:
        return int(row["row"])
    except (TypeError, ValueError):
        raise JoinError(f"{path}: record {record}: expected a row number; found {_short(row['row'])}") from None


def _match_feed(
    feed: str | Path,
    columns: Iterable[str] | None,
    ids: dict[int, str],
    kept: dict[int, dict[str, Any]],
) -> tuple[list[tuple[Product, dict[str, Any]]], list[tuple[int, str, str | None]]]:
    """Stream the feed; pop each prediction row's id as its feed row goes by (what is left
    in ``ids`` has no row in the feed)."""
    from multimodal_cat.feeds.columns import read_products

    pairs: list[tuple[Product, dict[str, Any]]] = []
    wrong: list[tuple[int, str, str | None]] = []
    for number, product, _ in read_products(feed, list(columns or [])):
        if number not in ids:
            continue
        expected = ids.pop(number)
        found = product.id if product is not None else ""
        if expected and expected != found:
            wrong.append((number, expected, found))
        elif number in kept and product is not None:
            pairs.append((product, kept.pop(number)))
    return pairs, wrong


def _mismatch_message(
    feed: str | Path, predictions: str | Path, wrong: list[tuple[int, str, str | None]], count: int
) -> str:
    shown = "; ".join(
        f"row {row}: id {expected!r} in the predictions, "
        + ("no such row in the feed" if found is None else f"{found!r} in the feed")
        for row, expected, found in wrong[:_SHOWN]
    )
    more = f" (and {count - _SHOWN:,} more)" if count > _SHOWN else ""
    return (
        f"{predictions} does not hold the predictions of {feed}: {shown}{more}. Give the feed "
        "that was categorized (unchanged), with the same --column options"
    )


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."

