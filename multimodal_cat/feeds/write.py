"""Write output rows in input order, durably, so an interrupted job can resume.

Rows are appended batch by batch; after each batch the file is flushed and fsynced, then a
small checkpoint (``.<output name>.progress.json`` next to the output) records how many rows
and bytes are complete. ``resume=True`` truncates anything after the checkpoint's byte offset
(a partial last line after ``kill -9``) and tells the job how many input rows to skip, so
nothing is duplicated or dropped. The checkpoint also holds a SHA-256 of the bytes written and
the job's fingerprint (see :mod:`multimodal_cat.feeds.resume`): a resume is refused when the
output is missing, shorter than the checkpoint or changed, or when the job differs. A finished
output is checked by its SHA-256 too, so even an edit that keeps its size is refused. CSV and
JSON lines are written directly; Parquet is spooled to a hidden JSON lines file and converted,
in chunks, when the job finishes.

One writer per output: the writer holds an exclusive lock on the output (and so on its
progress file) from before the first byte until :meth:`OutputWriter.close`; a second job on
the same output is refused at once, naming the holder (:mod:`multimodal_cat.feeds.lock`).

Example:
    >>> with OutputWriter("out.csv", ["row", "id", "status"]) as out:  # doctest: +SKIP
    ...     out.write_batch([{"row": 1, "id": "a", "status": "ok"}], {"ok": 1})
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError, optional_import
from multimodal_cat.feeds.lock import OutputLock

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Output columns holding lists; CSV and Parquet store them as JSON text.
LIST_COLUMNS = ("alternatives", "tags", "warnings")


class ResumeError(MultimodalCatError, ValueError):
    """The output cannot be resumed (no checkpoint, or written with other options)."""


class OutputPathError(MultimodalCatError, ValueError):
    """The output path cannot be used (it is the input, or its folder cannot be made)."""


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
        protect: Files the output must not be (the job's input): refused if it is one of them.

    Attributes:
        input_digest: Set by the job before each batch (digest of the input rows done);
            stored in the checkpoint and restored on resume as :attr:`resumed_input_digest`.
        notes: Values the job fixed once for all its rows (the feed's confidence shift),
            stored in the checkpoint from the next batch on and restored on resume.

    Raises:
        ResumeError: ``resume`` is set but the output cannot be safely continued.
        OutputPathError: The output is a protected file, or its folder cannot be created.
        OutputLockedError: Another job is writing the same output.
    """

    def __init__(
        self,
        path: str | Path,
        columns: Sequence[str],
        *,
        resume: bool = False,
        fingerprint: dict[str, Any] | None = None,
        protect: Sequence[str | Path] = (),
    ) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self.columns = list(columns)
        self.fingerprint = fingerprint or {}
        self.rows_done = 0
        self.counts: dict[str, int] = {}
        self.complete = False
        self.input_digest = ""
        self.resumed_input_digest = ""
        self.notes: dict[str, Any] = {}
        self._digest = hashlib.sha256()
        self.checkpoint = checkpoint_path(self.path)
        self.data_path = (
            self.path.with_name(f".{self.path.name}.partial.jsonl")
            if self.format == "parquet"
            else self.path
        )
        self._file: Any = None
        check_output_path(self.path, protect)
        self._lock = OutputLock(self.path)
        self._lock.acquire()  # before any byte is written: one job per output
        try:
            self._open(resume)
        except BaseException:
            self.close()
            raise

    def _open(self, resume: bool) -> None:
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
            header = self._csv_line(self.columns)
            self._file.write(header)
            self._digest.update(header)
        self._sync()

    def _reopen(self) -> None:
        try:
            state = json.loads(self.checkpoint.read_text(encoding="utf-8"))
            rows, counts, offset = int(state["rows"]), dict(state["counts"]), int(state["offset"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ResumeError(
                f"cannot resume: the checkpoint {self.checkpoint} is unreadable ({error}); "
                "rerun without --resume to start over"
            ) from None
        differs = fingerprint_differences(state, self.columns, self.fingerprint)
        if differs:
            raise ResumeError(
                f"cannot resume {self.path}: it was written by a job with other options "
                f"({differs} differ; checkpoint {self.checkpoint}); rerun with the same "
                "settings, or without --resume to start over"
            )
        self.rows_done, self.counts = rows, counts
        self.resumed_input_digest = self.input_digest = str(state.get("input_digest", ""))
        self.notes = dict(state.get("notes") or {})
        self.complete = bool(state.get("complete"))
        if self.complete:
            self._file = None
            self._check_finished(state)
            return
        self._file = self._open_checked(offset, str(state.get("sha256", "")))

    def _check_finished(self, state: dict[str, Any]) -> None:
        """A finished output must still be byte for byte what the job wrote (size, then SHA-256)."""
        size = self.path.stat().st_size if self.path.is_file() else None
        expected = state.get("file_sha256") or (
            state.get("sha256") if self.format != "parquet" else None
        )
        if size is None or size != state.get("size"):
            found = "missing" if size is None else f"{size:,} bytes"
        elif expected and file_sha256(self.path) != expected:
            found = "changed (same size, other bytes)"
        else:
            return
        raise ResumeError(
            f"cannot resume: {self.path} finished earlier ({state.get('size') or 0:,} bytes, "
            f"{self.rows_done:,} rows) but is now {found}; rerun without --resume to start over"
        )

    def _open_checked(self, offset: int, expected: str) -> Any:
        """Open the partial output after checking it still holds what the checkpoint says."""
        if not self.data_path.is_file():
            raise ResumeError(
                f"cannot resume: {self.data_path} is missing (its checkpoint records "
                f"{self.rows_done:,} rows); rerun without --resume to start over"
            )
        handle = open(self.data_path, "r+b")  # noqa: SIM115 (closed in close())
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(min(1 << 20, offset - handle.tell())), b""):
            digest.update(block)
        if size < offset or (expected and digest.hexdigest() != expected):
            handle.close()
            what = (
                f"shorter than its checkpoint ({size:,} of {offset:,} bytes)"
                if size < offset
                else "changed since its checkpoint"
            )
            raise ResumeError(
                f"cannot resume: {self.data_path} is {what}; rerun without --resume to start over"
            )
        self._digest = digest
        handle.truncate(offset)  # drop a partial batch written after the checkpoint
        handle.seek(offset)
        return handle

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
        data = buffer.getvalue()
        self._file.write(data)
        self._digest.update(data)
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
            self._file_sha256 = file_sha256(self.path)
        else:
            self._file_sha256 = self._digest.hexdigest()
        self.complete = True
        self._write_checkpoint(offset=0)

    def close(self) -> None:
        """Close the file and release the output's lock; unless :meth:`finish` was called,
        the output stays incomplete and a later ``resume`` continues it."""
        try:
            if self._file is not None and not self._file.closed:
                self._file.close()
        finally:
            self._lock.release()

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
            "sha256": self._digest.hexdigest(),
            "input_digest": self.input_digest,
            "notes": self.notes,
            "size": self.path.stat().st_size if self.complete else None,
            "file_sha256": getattr(self, "_file_sha256", None) if self.complete else None,
        }
        temp = self.checkpoint.with_name(f"{self.checkpoint.name}.{os.getpid()}.tmp")
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


@dataclass
class OrderedWrite:
    """What :func:`write_in_order` wrote: rows, per-status counts, rows seen twice (skipped)."""

    rows: int
    counts: dict[str, int]
    repeated: int


def write_in_order(
    output: str | Path,
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    *,
    gap: Callable[[int, int | None], Exception],
    expected: int | None = None,
    skip_repeats: bool = False,
    protect: Sequence[str | Path] = (),
) -> OrderedWrite:
    """Write rows sorted by ``row`` into a finished ``output``: rows 1, 2, 3... each once.

    The merge of shard parts and of a Ray job's parts (each sorted by ``row`` first).

    Args:
        output: The output file (its format from the extension).
        columns: Output columns, in order.
        rows: Output rows in ``row`` order.
        gap: Builds the error raised when row ``n`` is missing (with the row found instead, or
            ``None`` at the end); nothing is left at ``output`` then.
        expected: The number of rows there must be (``None``: as many as come).
        skip_repeats: A row given again right after itself is skipped (else it is a gap).
        protect: Files the output must not be.
    """
    counts = {"ok": 0, "degraded": 0, "error": 0}
    number = repeated = 0
    writer = OutputWriter(output, columns, protect=protect)  # refusals leave ``output`` alone
    try:
        batch: list[dict[str, Any]] = []
        for row in rows:
            found = int(row["row"])
            if found == number and skip_repeats:
                repeated += 1
                continue
            if found != number + 1:
                raise gap(number + 1, found)
            number = found
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            batch.append(row)
            if len(batch) >= 5_000:
                writer.write_batch(batch, counts)
                batch = []
        if expected is not None and number != expected:
            raise gap(number + 1, None)
        writer.write_batch(batch, counts)
        writer.finish()
    except BaseException:
        for leftover in (writer.path, writer.data_path):
            leftover.unlink(missing_ok=True)  # never leave half a merge behind
        raise
    finally:
        writer.close()
        checkpoint_path(output).unlink(missing_ok=True)  # the merged output is finished
    return OrderedWrite(number, counts, repeated)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_input_as_output(path: str | Path, inputs: dict[str, str | Path]) -> None:
    """Refuse an output that is one of a command's inputs (the same file, by any name).

    Args:
        path: The file about to be written.
        inputs: What each input is (``"feed"``, ``"--taxonomy"``...) -> its path.

    Raises:
        OutputPathError: ``path`` is one of ``inputs``; the message names which.

    Example:
        >>> refuse_input_as_output("out.csv", {"feed": "feed.csv"})  # different files: fine
    """
    path = Path(path)
    for what, other in inputs.items():
        other = Path(other)
        try:
            same = other.exists() and path.exists() and os.path.samefile(other, path)
            same = same or other.resolve() == path.resolve()
        except (OSError, RuntimeError, ValueError):  # unreadable or looping links: not this one
            continue
        if same:
            raise OutputPathError(
                f"the output {str(path)!r} is the input {what} {str(other)!r}; writing it "
                "would destroy that input: choose another -o"
            )


def check_output_path(path: Path, protect: Sequence[str | Path]) -> None:
    """Refuse an output that is one of the protected files (the job's feed); create its folder."""
    refuse_input_as_output(path, {f"feed{'' if i == 0 else f' {i + 1}'}": p for i, p in enumerate(protect)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(
            f"cannot write {str(path)!r}: a part of its folder {str(path.parent)!r} is a file, "
            "not a folder"
        ) from None
    except OSError as error:
        raise OutputPathError(
            f"cannot create the output folder {str(path.parent)!r} ({error.strerror})"
        ) from None
    if path.is_dir():
        raise OutputPathError(
            f"the output {str(path)!r} is a folder; name a file (.csv, .jsonl, .parquet)"
        )


def fingerprint_differences(state: dict[str, Any], columns: list[str], fingerprint: dict[str, Any]) -> str:
    """The settings in which a checkpoint differs from this job (empty when none)."""
    recorded = state.get("fingerprint") or {}
    keys = sorted(set(recorded) | set(fingerprint))
    names = [k for k in keys if recorded.get(k) != fingerprint.get(k)]
    if state.get("columns") != columns:
        names.insert(0, "output columns")
    return ", ".join(names)


def _arrow_types() -> dict[str, Any]:
    """Native Parquet types of the columns that are not text: numbers, flags, lists of structs."""
    pa = optional_import("pyarrow", extra="feeds", purpose="Writing Parquet")

    scored = lambda *names: pa.list_(  # noqa: E731 - a list of structs with a score
        pa.struct([*((n, pa.string()) for n in names), ("score", pa.float64())])
    )
    return {
        "row": pa.int64(), "confidence": pa.float64(), "needs_review": pa.bool_(),
        "alternatives": scored("id", "path"), "tags": scored("attribute", "value"),
        "warnings": pa.list_(pa.string()),
    }


def _arrow_schema(columns: Sequence[str]) -> Any:
    pa = optional_import("pyarrow", extra="feeds", purpose="Writing Parquet")

    types = _arrow_types()
    return pa.schema([(c, types.get(c, pa.string())) for c in columns])


def _arrow_value(column: str, value: Any, native: Sequence[str]) -> Any:
    if column in native:
        return None if value in (None, "") else value
    return None if value is None else to_text(value, column)


def jsonl_to_parquet(
    source: Path, target: Path, columns: Sequence[str], chunk: int = 10_000
) -> None:
    """Convert our JSON lines output to Parquet, ``chunk`` rows at a time (flat memory)."""
    pa = optional_import("pyarrow", extra="feeds", purpose="Writing Parquet")
    pq = optional_import("pyarrow.parquet", extra="feeds", purpose="Writing Parquet")

    schema = _arrow_schema(columns)
    native = [c for c in columns if c in _arrow_types()]
    temp = target.with_name(f".{target.name}.tmp")
    with pq.ParquetWriter(temp, schema) as writer, open(source, encoding="utf-8") as lines:
        batch: list[dict[str, Any]] = []
        written = 0
        for line in lines:
            record = json.loads(line)
            batch.append({c: _arrow_value(c, record.get(c), native) for c in columns})
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
