"""Stream rows out of a seller feed: CSV, TSV, JSON lines, Parquet or Excel, from a file or stdin.

Readers never hold the whole feed: CSV/TSV go through the :mod:`csv` module line by line,
JSON lines one line at a time, Parquet one record batch at a time
(:meth:`pyarrow.parquet.ParquetFile.iter_batches`), an Excel workbook's first sheet one row at
a time (:mod:`~multimodal_cat.feeds.read_xlsx`). Every record becomes one :class:`RawRow`;
a record that cannot be parsed (wrong number of CSV fields, invalid JSON, a line longer than
:data:`~multimodal_cat.feeds.text.MAX_LINE`, rows swallowed by an unclosed CSV quote) is a
``RawRow`` with ``error`` set and its line number, so the job can still write one output row
for it. Text is made safe (:func:`~multimodal_cat.feeds.text.clean_value`: invalid UTF-8 and
lone surrogates replaced by U+FFFD, NULs removed) and each repair is a warning on the row.
JSON lines columns are the union of the keys of every object (a first pass over the file;
stdin is spooled to a temporary file for it). A file that is not what its name says (a
``.gz`` that is not gzip, a truncated Parquet file) raises :class:`FeedFormatError`.

Example:
    >>> with FeedReader("examples/products.csv") as feed:  # doctest: +SKIP
    ...     print(feed.columns[:2], next(iter(feed)).values["title"])
    ['id', 'title'] Women's Linen Button-Up Shirt
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from multimodal_cat.errors import FormatError, optional_import
from multimodal_cat.feeds.read_csv import csv_records, delimiter_hint, duplicate_column
from multimodal_cat.feeds.read_xlsx import SheetRows
from multimodal_cat.feeds.text import MAX_LINE, BoundedLines, clean_value

FORMATS = ("csv", "tsv", "jsonl", "parquet", "xlsx")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}
_GZIP_MAGIC = b"\x1f\x8b"
# Most distinct JSON keys collected as columns (a hostile feed cannot grow the union forever).
MAX_COLUMNS = 10_000


class FeedFormatError(FormatError):
    """The feed's format cannot be told or is not supported."""


def _object(pairs: list[tuple[str, Any]], repeated: list[str]) -> dict[str, Any]:
    """A JSON object as a dict, noting keys given twice (json keeps the last silently)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        repeated += [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return value


class _BareCR:
    """Lines split at ``\\n`` only: a bare CR inside a line becomes a space, so it never ends
    (or splits) a record. The stream is opened with ``newline="\\n"``."""

    def __init__(self, text: IO[str]) -> None:
        self.text = text

    def readline(self, limit: int = -1) -> str:
        line = self.text.readline(limit)
        return _BARE_CR.sub(" ", line) if "\r" in line else line


_BARE_CR = re.compile(r"\r(?!\n)")


@dataclass
class RawRow:
    """One record of the feed before it becomes a product.

    Attributes:
        number: 1-based record number among the feed's records (malformed ones included).
        line: Line where the record starts (Parquet: the record number).
        values: Column -> value; ``None`` when the record could not be parsed.
        error: Why the record could not be parsed, with its line number.
        warnings: Notes about repaired input (e.g. invalid UTF-8 replaced).
    """

    number: int
    line: int
    values: dict[str, Any] | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def detect_format(path: str | Path) -> str:
    """Feed format from a file name (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, optionally ``.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    fmt = _EXTENSIONS.get(Path(name).suffix)
    if fmt is None:
        raise FeedFormatError(
            f"cannot tell the format of {str(path)!r} from its extension; expected one of "
            f"{', '.join(sorted(_EXTENSIONS))} (optionally .gz), or pass --format {'|'.join(FORMATS)}"
        )
    return fmt


class FeedReader:
    """Iterate the records of a feed without loading it whole.

    Args:
        source: A path, ``"-"`` for stdin, or an open binary stream.
        format: ``csv``, ``tsv``, ``jsonl``, ``parquet`` or ``xlsx`` (an Excel workbook's first
            sheet); guessed from the extension (stdin:
            sniffed from the first bytes) when ``None``.
        chunk_rows: Records per Parquet batch.
        max_line: Longest line accepted (longer ones become error rows, never held whole).

    Raises:
        FeedFormatError: Unknown or unsupported format, or a file that is not what its name
            says (not gzip, not Parquet, a CSV with another delimiter).
        FileNotFoundError: The feed file does not exist.
    """

    def __init__(
        self,
        source: str | Path | IO[bytes],
        format: str | None = None,
        chunk_rows: int = 1024,
        max_line: int = MAX_LINE,
    ) -> None:
        self.chunk_rows = chunk_rows
        self.max_line = max_line
        self.path: Path | None = None
        self._temp: IO[bytes] | None = None
        self._sheet: Any = None  # an Excel feed's first sheet (read_xlsx.SheetRows)
        if isinstance(source, (str, Path)) and str(source) != "-":
            self.path = Path(source)
            if not self.path.is_file():
                raise FileNotFoundError(f"feed file not found: {self.path}")
            self.format = format or detect_format(self.path)
            self._stream: IO[bytes] = self._open_file()
        else:
            raw = sys.stdin.buffer if str(source) == "-" else source
            self._stream = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
            self.format = format or self._sniff()
        if self.format not in FORMATS:
            raise FeedFormatError(
                f"unsupported feed format {self.format!r}; expected one of {FORMATS}"
            )
        self.columns: list[str] = []
        self._rows = self._open_rows()

    @property
    def gzipped(self) -> bool:
        """Whether the feed file is gzip-compressed (by its name)."""
        return self.path is not None and self.path.name.lower().endswith(".gz")

    def _spool(self) -> IO[bytes]:
        """Copy the stream into a temporary file (closed in ``close()``), rewound."""
        self._temp = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        shutil.copyfileobj(self._stream, self._temp, 1 << 20)
        self._temp.seek(0)
        return self._temp

    def _open_file(self) -> IO[bytes]:
        assert self.path is not None
        if not self.gzipped:
            return open(self.path, "rb")  # noqa: SIM115 (closed in close())
        with open(self.path, "rb") as handle:
            magic = handle.read(2)
        if magic != _GZIP_MAGIC:
            raise FeedFormatError(
                f"{self.path} is named .gz but is not gzip data (expected the bytes 1f 8b, "
                f"found {magic.hex(' ') or 'an empty file'}); rename it or compress it with gzip"
            )
        return gzip.open(self.path, "rb")  # type: ignore[return-value]

    def _sniff(self) -> str:
        head = self._stream.peek(64)[:64].lstrip()  # type: ignore[attr-defined]
        if head.startswith(b"PAR1"):
            return "parquet"
        if head.startswith(b"PK\x03\x04"):  # a zip: an Excel workbook is one
            return "xlsx"
        if head.startswith(b"{"):
            return "jsonl"
        return "tsv" if b"\t" in head.split(b"\n")[0] else "csv"

    def __iter__(self) -> Iterator[RawRow]:
        return self._guarded(self._rows)

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the files this reader opened (never stdin)."""
        if self.path is not None:
            self._stream.close()
        if self._temp is not None:
            self._temp.close()
        if self._sheet is not None:
            self._sheet.close()

    def estimate_rows(self) -> int | None:
        """Approximate record count for a progress bar (newlines; Parquet: exact), or ``None``."""
        if self.format == "parquet":
            return self._parquet_file.metadata.num_rows
        if self.format == "xlsx":
            return self._sheet.rows_below_header()
        if self.path is None or self.gzipped:
            return None
        lines = 0
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                lines += block.count(b"\n")
        return max(lines - (0 if self.format == "jsonl" else 1), 0)

    def _guarded(self, rows: Iterator[RawRow]) -> Iterator[RawRow]:
        """Turn a stream that breaks mid-way (bad gzip, corrupt Parquet page) into FeedFormatError."""
        try:
            yield from rows
        except (OSError, EOFError, ValueError) as error:
            if isinstance(error, FeedFormatError):
                raise
            where = self.path or "the feed"
            raise FeedFormatError(
                f"{where} cannot be read to the end ({type(error).__name__}: {str(error)[:200]}); "
                "is the file complete?"
            ) from None

    def _open_rows(self) -> Iterator[RawRow]:
        try:
            if self.format == "parquet":
                return self._parquet_rows()
            if self.format == "xlsx":
                return self._xlsx_rows()
            if self.format == "jsonl":
                return self._jsonl_rows()
            return self._csv_rows()
        except FeedFormatError:
            raise
        except (OSError, EOFError, ValueError) as error:
            raise FeedFormatError(
                f"{self.path or 'the feed'} is not a readable {self.format} file "
                f"({type(error).__name__}: {str(error)[:200]})"
            ) from None

    # --- CSV / TSV -------------------------------------------------------------------------
    def _csv_rows(self) -> Iterator[RawRow]:
        head = self._check_utf8()
        cr_only = b"\r" in head and b"\n" not in head  # a classic-Mac file: CR ends its lines
        text = io.TextIOWrapper(
            self._stream, encoding="utf-8-sig", errors="surrogateescape",
            newline="" if cr_only else "\n",
        )
        records = csv_records(text if cr_only else _BareCR(text), self.format, self.max_line, self.columns)
        first = next(records, None)  # fills self.columns
        hint = delimiter_hint(self.columns, self.format)
        if hint is not None:
            raise FeedFormatError(hint)
        duplicate = duplicate_column(self.columns)
        if duplicate is not None:
            raise FeedFormatError(duplicate, path=self.path, line=1)
        return self._chain(first, records)

    @staticmethod
    def _chain(first: RawRow | None, rest: Iterator[RawRow]) -> Iterator[RawRow]:
        if first is not None:
            yield first
            yield from rest

    # --- JSON lines ------------------------------------------------------------------------
    def _check_utf8(self) -> bytes:
        """The feed's first bytes; UTF-16 and UTF-32 text (a BOM, or NUL every other byte) is
        refused with the command that converts it."""
        head = self._stream.peek(1 << 16)[: 1 << 16]  # type: ignore[attr-defined]
        sample = head[:64]
        bom = sample.startswith((b"\xff\xfe", b"\xfe\xff"))
        nul_pairs = len(sample) >= 8 and (not any(sample[0::2]) or not any(sample[1::2]))
        if bom or nul_pairs:
            name = self.path.name if self.path else "feed.csv"
            found = "its byte-order mark" if bom else "a NUL byte in every other position"
            raise FeedFormatError(
                f"expected UTF-8 text; found UTF-16 or UTF-32 ({found}): convert it, e.g. "
                f"iconv -f UTF-16 -t UTF-8 {name} > utf8-{name}",
                path=self.path,
            )
        return head

    def _jsonl_rows(self) -> Iterator[RawRow]:
        self._check_utf8()
        if self.path is None:  # spool stdin, so the columns can be learned in a first pass
            self._stream = self._spool()  # type: ignore[assignment]
        self.columns = self._jsonl_columns()
        if self.path is None:
            self._stream.seek(0)
        return self._jsonl_records(BoundedLines(self._stream, self.max_line))

    def _jsonl_columns(self) -> list[str]:
        """Union of the keys of every object, in order of first appearance."""
        if self.path is None:
            stream: IO[bytes] = self._stream
        else:
            stream = self._open_file()
        seen: dict[str, None] = {}
        try:
            lines = BoundedLines(stream, self.max_line)
            for raw, too_long in lines.or_errors():
                if len(seen) >= MAX_COLUMNS:
                    break
                if too_long is not None:
                    continue
                row = self._jsonl_record(raw, 0, 0)
                if row is not None and row.values is not None:
                    seen.update(dict.fromkeys(row.values))
        finally:
            if self.path is not None:
                stream.close()
        return list(seen)

    def _jsonl_records(self, lines: BoundedLines) -> Iterator[RawRow]:
        number = 0
        for raw, too_long in lines.or_errors():
            if too_long is not None:
                number += 1
                yield RawRow(number, too_long.line, None, str(too_long))
                continue
            row = self._jsonl_record(raw, lines.line, number + 1)
            if row is not None:
                number += 1
                yield row

    @staticmethod
    def _jsonl_record(raw: bytes, line_no: int, number: int) -> RawRow | None:
        if not raw.strip():
            return None
        warnings: list[str] = []
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            warnings.append("invalid UTF-8 bytes replaced")
        repeated: list[str] = []
        try:
            value = json.loads(text, object_pairs_hook=lambda pairs: _object(pairs, repeated))
        except (json.JSONDecodeError, RecursionError) as error:
            msg = getattr(error, "msg", "nested too deeply")
            return RawRow(number, line_no, None, f"line {line_no}: invalid JSON ({msg})")
        if not isinstance(value, dict):
            msg = f"line {line_no}: expected a JSON object, found {type(value).__name__}"
            return RawRow(number, line_no, None, msg)
        if repeated:
            names = ", ".join(repr(k) for k in dict.fromkeys(repeated))
            warnings.append(f"line {line_no}: key(s) {names} given twice in one object; the last value is used")
        values = {
            clean_value(str(k), "header", warnings): clean_value(v, str(k), warnings)
            for k, v in value.items()
        }
        return RawRow(number, line_no, values, None, warnings)

    # --- Excel -----------------------------------------------------------------------------
    def _xlsx_rows(self) -> Iterator[RawRow]:
        source: Any = self.path
        if self.path is None or self.gzipped:  # openpyxl needs a seekable, plain file
            source = self._spool()
        try:
            self._sheet = SheetRows(source, self.path or "the feed")
        except FormatError as error:
            raise FeedFormatError(str(error)) from None
        self.columns = self._sheet.columns
        return (RawRow(*record) for record in self._sheet.records())

    # --- Parquet ---------------------------------------------------------------------------
    def _parquet_rows(self) -> Iterator[RawRow]:
        pq = optional_import("pyarrow.parquet", extra="feeds", purpose="Reading a Parquet feed")

        source: Any = self.path
        if self.path is None or self.gzipped:  # pyarrow needs a seekable, plain file
            source = self._spool()
        try:
            self._parquet_file = pq.ParquetFile(source)
        except Exception as error:  # pyarrow.ArrowInvalid and friends
            raise FeedFormatError(
                f"{self.path or 'the feed'} is not a readable Parquet file (truncated or not "
                f"Parquet: {str(error)[:200]})"
            ) from None
        self.columns = list(self._parquet_file.schema_arrow.names)
        return self._parquet_records()

    def _parquet_records(self) -> Iterator[RawRow]:
        number = 0
        try:
            for batch in self._parquet_file.iter_batches(batch_size=self.chunk_rows):
                for values in batch.to_pylist():
                    number += 1
                    notes: list[str] = []
                    clean = {k: clean_value(v, k, notes) for k, v in values.items()}
                    yield RawRow(number, number, clean, None, notes)
        except Exception as error:  # a corrupt page: stop clearly, at the record reached
            if isinstance(error, (FeedFormatError, GeneratorExit)):
                raise
            raise FeedFormatError(
                f"{self.path or 'the feed'}: cannot read the Parquet data after record "
                f"{number:,} ({type(error).__name__}: {str(error)[:200]})"
            ) from None
