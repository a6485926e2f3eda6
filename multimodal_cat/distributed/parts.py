"""The output parts a Ray job writes: their rows, the check of finished parts, the merge.

Each batch's output rows travel as a table (:func:`encode_rows`) with a few readable columns
(``row``, ``id``, ``status``, ``category_id``, ``category_path``, ``confidence``, ``error``)
and ``record``, the whole output row pickled, so the merge writes exactly the cells the local
job writes. :func:`finished_rows` is the library's own check of what is done: every readable
part counts, a part cut short by a killed driver (no Parquet footer) is removed, so a resume
redoes only the rows no finished part holds. :func:`merge_parts` writes the rows in ``row``
order through the local job's :class:`~multimodal_cat.feeds.write.OutputWriter` (same
formats, same bytes), each row once, and refuses to finish when a row is missing.

Example:
    >>> table = encode_rows([{"row": 1, "id": "a", "status": "ok", "warnings": []}])
    >>> table.column("status").to_pylist(), decode_rows(table)[0]["id"]
    (['ok'], 'a')
"""

from __future__ import annotations

import heapq
import logging
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError, optional_import
from multimodal_cat.feeds.write import OrderedWrite, write_in_order

logger = logging.getLogger(__name__)

_TEXT = ("id", "status", "category_id", "category_path", "error")


class MissingRowsError(MultimodalCatError, RuntimeError):
    """The output parts do not hold every row of the feed (rerun with ``--resume``)."""


def encode_rows(rows: Sequence[dict[str, Any]]) -> Any:
    """A table of output rows: readable columns plus the pickled ``record``."""
    pa = optional_import("pyarrow", extra="ray", purpose="Categorizing on Ray")
    columns: dict[str, Any] = {"row": pa.array([r["row"] for r in rows], pa.int64())}
    for name in _TEXT:
        columns[name] = pa.array([_text(r.get(name)) for r in rows], pa.string())
    columns["confidence"] = pa.array([_number(r.get("confidence")) for r in rows], pa.float64())
    columns["record"] = pa.array([pickle.dumps(r, protocol=5) for r in rows], pa.binary())
    return pa.table(columns)


def decode_rows(table: Any) -> list[dict[str, Any]]:
    """The output rows (as the local job builds them) of an :func:`encode_rows` table."""
    return [pickle.loads(value) for value in table.column("record").to_pylist()]


def finished_rows(folder: Path) -> set[int]:
    """The rows held by the finished Parquet parts in ``folder``; unreadable parts are removed."""
    pq = optional_import("pyarrow.parquet", extra="ray", purpose="Categorizing on Ray")
    done: set[int] = set()
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        try:
            done.update(pq.read_table(path, columns=["row"]).column("row").to_pylist())
        except Exception as error:  # cut short (no footer) or damaged: its rows are redone
            logger.warning("removing unfinished output part %s (%s)", path, error)
            path.unlink()
    return done


def merge_parts(
    folder: Path, output: Path, columns: list[str], expected: int, protect: Sequence[Path] = ()
) -> OrderedWrite:
    """Write the rows of every part in ``folder`` into ``output`` in ``row`` order, each once.

    Args:
        folder: The Ray job's output parts.
        output: The final output (``.csv``, ``.jsonl`` or ``.parquet``).
        columns: The output columns, in order.
        expected: The feed's record count: rows 1 to ``expected`` must each be found.
        protect: Files the output must not be (the feed).

    Returns:
        Rows written, per-status counts, and rows found twice (a retried task's; skipped).

    Raises:
        MissingRowsError: A row is missing (nothing is left at ``output``).
    """

    def gap(row: int, found: int | None) -> MissingRowsError:
        return MissingRowsError(
            f"row {row:,} of {expected:,} is missing from the Ray output parts in {folder}; "
            "rerun the same command with --resume to redo the missing rows"
        )

    rows = (record for _, record in _in_order(sorted(folder.glob("*.parquet"))))
    return write_in_order(
        output, columns, rows, gap=gap, expected=expected, skip_repeats=True, protect=protect
    )


def _in_order(paths: list[Path]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row, output row)`` over all parts, by row; a part is read when the merge reaches its
    first row, so memory holds the parts that overlap the current row, not all of them."""
    pq = optional_import("pyarrow.parquet", extra="ray", purpose="Categorizing on Ray")
    starts = sorted((_first_row(pq, p), i, p) for i, p in enumerate(paths))
    heap: list[tuple[int, int, int, bytes]] = []
    waiting = 0
    while heap or waiting < len(starts):
        while waiting < len(starts) and (not heap or starts[waiting][0] <= heap[0][0]):
            _, index, path = starts[waiting]
            table = pq.read_table(path, columns=["row", "record"])
            rows = table.column("row").to_pylist()
            records = table.column("record").to_pylist()
            for position, (row, record) in enumerate(zip(rows, records, strict=True)):
                heapq.heappush(heap, (row, index, position, record))
            waiting += 1
        row, _, _, record = heapq.heappop(heap)
        yield row, pickle.loads(record)


def _first_row(pq: Any, path: Path) -> int:
    """The smallest ``row`` of a part, from its Parquet statistics (or by reading it)."""
    meta = pq.ParquetFile(path).metadata
    index = meta.schema.to_arrow_schema().get_field_index("row")
    lows = [
        meta.row_group(g).column(index).statistics
        for g in range(meta.num_row_groups)
    ]
    if lows and all(s is not None and s.has_min_max for s in lows):
        return min(int(s.min) for s in lows)
    rows = pq.read_table(path, columns=["row"]).column("row").to_pylist()
    return min(rows) if rows else 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
