"""Write output rows in input order, durably, so an interrupted job can resume.

Rows are appended batch by batch; after each batch the file is flushed and fsynced, then a
small checkpoint (``.<output name>.progress.json`` next to the output) records how many rows
and bytes are complete. ``resume=True`` truncates anything after the checkpoint's byte offset
(a partial last line after ``kill -9``) and tells the job how many input rows to skip, so
nothing is duplicated or dropped. CSV and JSON lines are written directly; Parquet is spooled
to a hidden JSON lines file and converted, in chunks, when the job finishes.

Example:
    >>> with OutputWriter("out.csv", ["row", "id", "status"]) as out:  # doctest: +SKIP
    ...     out.write_batch([{"row": 1, "id": "a", "status": "ok"}], {"ok": 1})
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError, optional_import

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Output columns holding lists; CSV and Parquet store them as JSON text.
LIST_COLUMNS = ("alternatives", "tags", "warnings")


class ResumeError(MultimodalCatError, ValueError):
    """The output cannot be resumed (no checkpoint, or written with other options)."""


def output_format(path: str | Path) -> str:
    """Output format from the extension: ``.csv``, ``.jsonl`` or ``.parquet``."""
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the output format of {str(path)!r}; expected an extension among "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    return fmt


def checkpoint_path(path: str | Path) -> Path:
    """Where the resume checkpoint of ``path`` lives."""
    path = Path(path)
    return path.with_name(f".{path.name}.progress.json")


def to_text(value: Any, column: str = "") -> str:
    """A cell for CSV/Parquet: warnings joined by ``; ``, other lists as JSON, ``None``/empty as ``""``."""
    if value is None or (isinstance(value, (list, dict)) and not value):
        return ""
    if column == "warnings" and isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class OutputWriter:
    """Append-only, resumable writer of flat output rows.

    Args:
        path: Output file; format from its extension.
        columns: Output column names, in order (fixed for the whole job).
        resume: Continue a previous run of the same job instead of starting over.
        fingerprint: Anything identifying the job's options (feed, shard...); a resume with a
            different fingerprint is refused.

    Raises:
        ResumeError: ``resume`` is set but the output cannot be safely continued.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str],
        *,
        resume: bool = False,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.columns = list(columns)
        self.fingerprint = fingerprint or {}
        self.rows_done = 0
        self.counts: dict[str, int] = {}
        self.complete = False
        self.checkpoint = checkpoint_path(self.path)
        self.data_path = (
            self.path.with_name(f".{self.path.name}.partial.jsonl")
            if self.format == "parquet"
            else self.path
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint.exists():
            self._reopen()
        else:
            if resume:
                logger.warning(
                    "no checkpoint %s: starting %s from the first row", self.checkpoint, self.path
                )
            self._start()

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._file = open(self.data_path, "wb")  # noqa: SIM115 (closed in close())
        if self.format == "csv":
            self._file.write(self._csv_line(self.columns))
        self._sync()

    def _reopen(self) -> None:
        state = json.loads(self.checkpoint.read_text(encoding="utf-8"))
        if state.get("columns") != self.columns or state.get("fingerprint") != self.fingerprint:
            raise ResumeError(
                f"{self.path} was written by a job with other options or columns "
                f"(checkpoint {self.checkpoint}); rerun without --resume to start over"
            )
        self.rows_done, self.counts = state["rows"], dict(state["counts"])
        self.complete = bool(state.get("complete"))
        if self.complete:
            self._file = None
            return
        if not self.data_path.exists():
            raise ResumeError(f"cannot resume: {self.data_path} is missing")
        self._file = open(self.data_path, "r+b")  # noqa: SIM115
        self._file.truncate(state["offset"])  # drop a partial batch written after the checkpoint
        self._file.seek(state["offset"])

    def write_batch(self, rows: Sequence[dict[str, Any]], counts: dict[str, int]) -> None:
        """Append rows (in order), make them durable, then record the checkpoint.

        Args:
            rows: Flat rows keyed by :attr:`columns`.
            counts: Running totals to store with the checkpoint (restored on resume).
        """
        buffer = io.BytesIO()
        for row in rows:
            if self.format == "csv":
                buffer.write(self._csv_line([to_text(row.get(c), c) for c in self.columns]))
            else:
                record = {c: row.get(c) for c in self.columns}
                buffer.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._file.write(buffer.getvalue())
        self.rows_done += len(rows)
        self.counts = dict(counts)
        self._sync()

    def finish(self) -> None:
        """Complete the output (Parquet: convert the spool) and mark the checkpoint complete."""
        if self.complete:
            return
        self._file.close()
        if self.format == "parquet":
            jsonl_to_parquet(self.data_path, self.path, self.columns)
            self.data_path.unlink()
        self.complete = True
        self._write_checkpoint(offset=0)

    def close(self) -> None:
        """Close the file without completing it (a later ``resume`` continues)."""
        if self._file is not None and not self._file.closed:
            self._file.close()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._write_checkpoint(offset=self._file.tell())

    def _write_checkpoint(self, offset: int) -> None:
        state = {
            "output": self.path.name,
            "format": self.format,
            "columns": self.columns,
            "fingerprint": self.fingerprint,
            "rows": self.rows_done,
            "offset": offset,
            "counts": self.counts,
            "complete": self.complete,
        }
        temp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.checkpoint)

    @staticmethod
    def _csv_line(values: Sequence[str]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(values)
        return text.getvalue().encode("utf-8")


def _arrow_schema(columns: Sequence[str]) -> Any:
    pa = optional_import("pyarrow", extra="feeds", purpose="Writing Parquet")

    types = {"row": pa.int64(), "confidence": pa.float64()}
    return pa.schema([(c, types.get(c, pa.string())) for c in columns])


def _arrow_value(column: str, value: Any) -> Any:
    if column in ("row", "confidence"):
        return None if value in (None, "") else value
    return None if value is None else to_text(value, column)


def jsonl_to_parquet(
    source: Path, target: Path, columns: Sequence[str], chunk: int = 10_000
) -> None:
    """Convert our JSON lines output to Parquet, ``chunk`` rows at a time (flat memory)."""
    pa = optional_import("pyarrow", extra="feeds", purpose="Writing Parquet")
    pq = optional_import("pyarrow.parquet", extra="feeds", purpose="Writing Parquet")

    schema = _arrow_schema(columns)
    temp = target.with_name(f".{target.name}.tmp")
    with pq.ParquetWriter(temp, schema) as writer, open(source, encoding="utf-8") as lines:
        batch: list[dict[str, Any]] = []
        written = 0
        for line in lines:
            record = json.loads(line)
            batch.append({c: _arrow_value(c, record.get(c)) for c in columns})
            if len(batch) >= chunk:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written, batch = written + len(batch), []
        if batch or not written:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    os.replace(temp, target)


def read_output(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream rows back from an output file (used to merge shards and in tests)."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                row["row"] = int(row["row"])
                yield row
    elif fmt == "jsonl":
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)
    else:
        pq = optional_import("pyarrow.parquet", extra="feeds", purpose="Reading Parquet output")

        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
