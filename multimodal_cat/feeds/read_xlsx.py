"""Rows of an Excel workbook (``.xlsx``): the first sheet, its first row as the header.

Catalog teams keep their product lists in spreadsheets. The workbook is read with openpyxl in
read-only mode, a row at a time (the sheet is never held whole), with cached formula results
rather than formulas. Cell values become what a CSV export would hold: text as it is (made safe
like every feed's, :func:`~multimodal_cat.feeds.text.clean_value`), whole numbers without a
``.0``, dates in ISO form. Blank rows are skipped, as CSV's blank lines are; a blank header cell
is named by its column letter; a row with values beyond the header is an error row, as a CSV
line with too many cells is. A workbook with more than one sheet is read from its first, with a
warning on the first record.

Example:
    >>> cell_value(3.0), cell_value(2.5), cell_value(datetime.datetime(2026, 1, 5))
    (3, 2.5, '2026-01-05')
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from multimodal_cat.errors import FormatError, optional_import
from multimodal_cat.feeds.read_csv import duplicate_column
from multimodal_cat.feeds.text import clean_value


def cell_value(value: Any) -> Any:
    """A cell's value as a feed holds it: whole floats as ints, dates as ISO text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()  # Excel keeps dates as midnight datetimes
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


class SheetRows:
    """The header and records of a workbook's first sheet.

    Args:
        source: The workbook: a path or a seekable binary file.
        name: What messages call it (the feed's path).

    Raises:
        FormatError: Not a readable ``.xlsx`` workbook, an empty first sheet, or a header
            naming a column twice.
    """

    def __init__(self, source: str | Path | IO[bytes], name: object) -> None:
        openpyxl = optional_import("openpyxl", extra="feeds", purpose="Reading an Excel feed")
        self.name = name
        try:
            self.book = openpyxl.load_workbook(source, read_only=True, data_only=True)
        except Exception as error:  # zipfile.BadZipFile, KeyError, InvalidFileException...
            raise FormatError(
                f"{name} is not a readable Excel workbook (.xlsx: {type(error).__name__}: "
                f"{str(error)[:200]}); save it as .xlsx, or export it as CSV"
            ) from None
        sheet = self.book.worksheets[0]
        self.sheets = len(self.book.worksheets)
        self.max_row = sheet.max_row
        self._rows = sheet.iter_rows(values_only=True)
        header = next(self._rows, None)
        if header is None or all(v is None for v in header):
            raise FormatError(f"{name}: the first sheet has no header row (expected column names in row 1)")
        self.columns = self._names(header)
        duplicate = duplicate_column(self.columns)
        if duplicate is not None:
            raise FormatError(f"{name}, row 1: {duplicate}")

    @staticmethod
    def _names(header: tuple[Any, ...]) -> list[str]:
        from openpyxl.utils import get_column_letter

        cells = list(header)
        while cells and (cells[-1] is None or str(cells[-1]).strip() == ""):
            cells.pop()
        return [
            str(v).strip() if v is not None and str(v).strip() else get_column_letter(i)
            for i, v in enumerate(cells, start=1)
        ]

    def rows_below_header(self) -> int | None:
        """Rows under the header as the sheet's dimension says (blank ones included), or None."""
        return None if self.max_row is None else max(self.max_row - 1, 0)

    def records(self) -> Iterator[tuple[int, int, dict[str, Any] | None, str | None, list[str]]]:
        """``(number, row, values, error, notes)`` per non-blank row, in order (the fields of a
        :class:`~multimodal_cat.feeds.read.RawRow`); missing cells are ``None``."""
        width, number = len(self.columns), 0
        for line, cells in enumerate(self._rows, start=2):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
                continue
            number += 1
            notes = [] if number > 1 or self.sheets == 1 else [
                f"the workbook has {self.sheets} sheets; only the first is read"]
            extra = [v for v in cells[width:] if v is not None and str(v).strip()]
            if extra:
                error = (f"row {line}: {len(extra)} value(s) beyond the header's {width} columns; "
                         "expected one value per named column")
                yield number, line, None, error, notes
                continue
            cells = (*cells[:width], *([None] * (width - len(cells))))  # beyond: blank (checked)
            values = {c: clean_value(cell_value(v), c, notes) for c, v in zip(self.columns, cells, strict=True)}
            yield number, line, values, None, notes

    def close(self) -> None:
        """Release the workbook's file (read-only workbooks keep it open)."""
        self.book.close()
