"""CSV / TSV records of a feed, with every physical line accounted for.

A CSV quote that is opened and never closed makes the :mod:`csv` module read the following
lines as one field, silently swallowing the rows they hold. :func:`csv_records` notices it (a
record spanning several lines whose inner lines each look like a whole row on their own) and
reports each swallowed line as an error row with its line number, so row numbers stay true
and nothing disappears. A record that the :mod:`csv` module reads with the header's number of
fields is always kept as it is. Lines longer than the reader's limit become error rows too;
a field may be as long as a line (the :mod:`csv` module's own 131,072-character field limit
is raised to it), and the product fields are then capped with a warning (see
:mod:`multimodal_cat.feeds.columns`).

Example:
    >>> import io
    >>> text = io.StringIO('id,title,image\\n1,"Mug,a.png\\n2,Cup,b.png\\n3,Pan,c.png\\n', newline="")
    >>> rows = list(csv_records(text, "csv"))
    >>> [(r.line, r.values is None) for r in rows]
    [(2, True), (3, True), (4, True)]
    >>> rows[0].error.split(";")[0]
    'line 2: a quote opened on this line is not closed until line 4'
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO, Any

from multimodal_cat.feeds.text import MAX_LINE, BoundedLines, LineTooLongError, clean_value

_DELIMITERS = {";": "semicolons", "|": "pipes"}


def allow_long_fields(limit: int = MAX_LINE) -> None:
    """Let the :mod:`csv` module read fields up to ``limit`` characters (its default, 131,072,
    would make a long description an error row, under the documented 8 MiB line limit).
    The setting is the module's, for the whole process; it is only ever raised."""
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _reader(lines: Any, format: str) -> Any:
    allow_long_fields()
    if format == "tsv":
        return csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(lines)


def duplicate_column(header: list[str]) -> str | None:
    """The error for a header naming a column twice (the row values would overwrite each other).

    Example:
        >>> duplicate_column(["id", "title", "title"])
        "expected each column name once; found 'title' twice (columns 2 and 3): rename one"
    """
    first: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            continue
        if name in first:
            return (
                f"expected each column name once; found {name!r} twice (columns {first[name]} "
                f"and {position}): rename one"
            )
        first[name] = position
    return None


def delimiter_hint(header: list[str], format: str) -> str | None:
    """A hint when a CSV header looks separated by ``;`` or ``|`` rather than commas."""
    if format != "csv" or len(header) != 1:
        return None
    for sep, name in _DELIMITERS.items():
        if header[0].count(sep) >= 1:
            return (
                f"the header {header[0][:80]!r} looks separated by {name} ({sep!r}), but CSV "
                "feeds are read with commas; save the feed with commas (or tabs, as .tsv)"
            )
    return None


def csv_records(
    text: IO[str], format: str, limit: int = MAX_LINE, header_out: list[str] | None = None
) -> Iterator[Any]:
    """Yield :class:`~multimodal_cat.feeds.read.RawRow` records of a CSV/TSV text stream.

    Args:
        text: The decoded stream (``newline=""``).
        format: ``"csv"`` or ``"tsv"``.
        limit: Longest line accepted, in characters.
        header_out: Filled with the cleaned header before the first record is yielded.
    """
    from multimodal_cat.feeds.read import RawRow

    lines = BoundedLines(text, limit)
    reader = _reader(lines, format)
    try:
        header = next(reader)
    except (StopIteration, LineTooLongError, csv.Error):
        header = []
    columns = [clean_value(c, "header", []).strip() for c in header]
    if header_out is not None:
        header_out[:] = columns
    width, number = len(columns), 0
    while True:
        lines.record = []
        start = lines.line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except LineTooLongError as error:
            number += 1
            yield RawRow(number, error.line, None, str(error))
            continue
        except csv.Error as error:
            fields, problem = None, f"malformed CSV record ({error})"
        else:
            if not fields:  # blank line
                continue
            problem = (
                None if len(fields) == width else f"expected {width} fields, found {len(fields)}"
            )
        record = lines.record
        if len(record) > 1 and _swallowed(record, width, format, well_formed=problem is None):
            for offset, row in enumerate(_swallowed_rows(start, len(record), problem)):
                yield RawRow(number + offset + 1, start + offset, None, row)
            number += len(record)
            continue
        number += 1
        if problem is not None or fields is None:
            yield RawRow(number, start, None, f"line {start}: {problem}")
            continue
        notes: list[str] = []
        values = {c: clean_value(v, c, notes) for c, v in zip(columns, fields, strict=True)}
        yield RawRow(number, start, values, None, notes)


def _swallowed(record: list[str], width: int, format: str, *, well_formed: bool) -> bool:
    """Whether a multi-line record is really several rows eaten by an unclosed quote.

    Certain when the record holds an odd number of quote characters (the quote was still open
    at the end of the file). A record the :mod:`csv` module read whole, with the header's
    number of fields (``well_formed``), is never rejected: a valid multi-line field may well
    hold lines with as many commas as a row. Otherwise likely when most of the lines it
    swallowed read as whole rows on their own (a real multi-line description rarely has
    exactly the right number of commas on most of its lines).
    """
    if format == "csv" and sum(line.count('"') for line in record) % 2:
        return True
    if well_formed:
        return False
    tail = [_width_alone(line, format) == width for line in record[1:]]
    if len(tail) == 1:
        return tail[0]
    inner = tail[:-1]  # the last line also holds the quote that closed the field
    return 2 * sum(inner) >= len(inner)


def _width_alone(line: str, format: str) -> int:
    try:
        return len(next(_reader([line], format), []))
    except csv.Error:
        return -1


def _swallowed_rows(start: int, count: int, problem: str | None) -> Iterator[str]:
    end = start + count - 1
    extra = f" ({problem})" if problem else ""
    yield (
        f"line {start}: a quote opened on this line is not closed until line {end}; "
        f"the {count - 1} line(s) it swallowed are reported as error rows{extra}"
    )
    for line in range(start + 1, end + 1):
        yield f"line {line}: swallowed by the unclosed quote opened on line {start}"
