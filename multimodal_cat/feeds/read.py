"""Stream rows out of a seller feed: CSV, TSV, JSON lines or Parquet, from a file or stdin.

Readers never hold the whole feed: CSV/TSV go through the :mod:`csv` module line by line,
JSON lines one line at a time, Parquet one record batch at a time
(:meth:`pyarrow.parquet.ParquetFile.iter_batches`). Every record becomes one :class:`RawRow`;
a record that cannot be parsed (wrong number of CSV fields, invalid JSON) is a ``RawRow`` with
``error`` set and its line number, so the job can still write one output row for it.
Invalid UTF-8 bytes are replaced (U+FFFD) and reported as a warning on the row.

Example:
    >>> with FeedReader("examples/products.csv") as feed:  # doctest: +SKIP
    ...     print(feed.columns[:2], next(iter(feed)).values["title"])
    ['id', 'title'] Women's Linen Button-Up Shirt
"""

from __future__ import annotations

import csv
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

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SURROGATES = re.compile("[\udc80-\udcff]")


class FeedFormatError(FormatError):
    """The feed's format cannot be told or is not supported."""


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


def _fix_text(value: str, column: str, warnings: list[str]) -> str:
    if _SURROGATES.search(value) is None:
        return value
    warnings.append(f"invalid UTF-8 bytes in {column!r} replaced")
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class FeedReader:
    """Iterate the records of a feed without loading it whole.

    Args:
        source: A path, ``"-"`` for stdin, or an open binary stream.
        format: ``csv``, ``tsv``, ``jsonl`` or ``parquet``; guessed from the extension (stdin:
            sniffed from the first bytes) when ``None``.
        chunk_rows: Records per Parquet batch.

    Raises:
        FeedFormatError: Unknown or unsupported format.
        FileNotFoundError: The feed file does not exist.
    """

    def __init__(
        self, source: str | Path | IO[bytes], format: str | None = None, chunk_rows: int = 1024
    ) -> None:
        self.chunk_rows = chunk_rows
        self.path: Path | None = None
        self._temp: IO[bytes] | None = None
        if isinstance(source, (str, Path)) and str(source) != "-":
            self.path = Path(source)
            if not self.path.is_file():
                raise FileNotFoundError(f"feed file not found: {self.path}")
            self.format = format or detect_format(self.path)
            opener = gzip.open if self.path.name.lower().endswith(".gz") else open
            self._stream: IO[bytes] = opener(self.path, "rb")  # type: ignore[operator]
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

    def _sniff(self) -> str:
        head = self._stream.peek(64)[:64].lstrip()  # type: ignore[attr-defined]
        if head.startswith(b"PAR1"):
            return "parquet"
        if head.startswith(b"{"):
            return "jsonl"
        return "tsv" if b"\t" in head.split(b"\n")[0] else "csv"

    def __iter__(self) -> Iterator[RawRow]:
        return self._rows

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

    def estimate_rows(self) -> int | None:
        """Approximate record count for a progress bar (newlines; Parquet: exact), or ``None``."""
        if self.format == "parquet":
            return self._parquet_file.metadata.num_rows
        if self.path is None or self.path.name.lower().endswith(".gz"):
            return None
        lines = 0
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                lines += block.count(b"\n")
        return max(lines - (0 if self.format == "jsonl" else 1), 0)

    def _open_rows(self) -> Iterator[RawRow]:
        if self.format == "parquet":
            return self._parquet_rows()
        if self.format == "jsonl":
            return self._jsonl_rows()
        return self._csv_rows()

    # --- CSV / TSV -------------------------------------------------------------------------
    def _csv_rows(self) -> Iterator[RawRow]:
        text = io.TextIOWrapper(
            self._stream, encoding="utf-8-sig", errors="surrogateescape", newline=""
        )
        if self.format == "tsv":
            reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            header = []
        header_warnings: list[str] = []
        self.columns = [_fix_text(c, "header", header_warnings).strip() for c in header]
        return self._csv_records(reader)

    def _csv_records(self, reader: Any) -> Iterator[RawRow]:
        width, number, last_line = len(self.columns), 0, reader.line_num
        while True:
            start = last_line + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                number += 1
                last_line = reader.line_num
                yield RawRow(number, start, None, f"line {start}: malformed CSV record ({error})")
                continue
            last_line = reader.line_num
            if not fields:  # blank line
                continue
            number += 1
            if len(fields) != width:
                msg = f"line {start}: expected {width} fields, found {len(fields)}"
                yield RawRow(number, start, None, msg)
                continue
            warnings: list[str] = []
            values = {
                c: _fix_text(v, c, warnings) for c, v in zip(self.columns, fields, strict=True)
            }
            yield RawRow(number, start, values, None, warnings)

    # --- JSON lines ------------------------------------------------------------------------
    def _jsonl_rows(self) -> Iterator[RawRow]:
        first: list[RawRow] = []
        lines = enumerate(self._stream, start=1)
        number = 0
        for line_no, raw in lines:  # read up to the first valid object to learn the columns
            row = self._jsonl_record(raw, line_no, number + 1)
            if row is None:
                continue
            number += 1
            first.append(row)
            if row.values is not None:
                self.columns = list(row.values)
                break
        return self._jsonl_records(first, lines, number)

    def _jsonl_records(self, first: list[RawRow], lines: Any, number: int) -> Iterator[RawRow]:
        yield from first
        for line_no, raw in lines:
            row = self._jsonl_record(raw, line_no, number + 1)
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
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            return RawRow(number, line_no, None, f"line {line_no}: invalid JSON ({error.msg})")
        if not isinstance(value, dict):
            msg = f"line {line_no}: expected a JSON object, found {type(value).__name__}"
            return RawRow(number, line_no, None, msg)
        return RawRow(number, line_no, value, None, warnings)

    # --- Parquet ---------------------------------------------------------------------------
    def _parquet_rows(self) -> Iterator[RawRow]:
        pq = optional_import("pyarrow.parquet", extra="feeds", purpose="Reading a Parquet feed")

        source: Any = self.path
        if self.path is None or self.path.name.lower().endswith(".gz"):
            self._temp = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
            shutil.copyfileobj(self._stream, self._temp, 1 << 20)
            self._temp.seek(0)
            source = self._temp
        self._parquet_file = pq.ParquetFile(source)
        self.columns = list(self._parquet_file.schema_arrow.names)
        return self._parquet_records()

    def _parquet_records(self) -> Iterator[RawRow]:
        number = 0
        for batch in self._parquet_file.iter_batches(batch_size=self.chunk_rows):
            for values in batch.to_pylist():
                number += 1
                yield RawRow(number, number, values)
