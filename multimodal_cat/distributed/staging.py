"""Stage a feed for a cluster: read it once with the library's own reader into Parquet parts.

Whatever the feed's format (CSV, TSV, JSON lines, Parquet, Excel, stdin), :func:`stage_feed` reads
it with :class:`~multimodal_cat.feeds.read.FeedReader`, so every record is numbered the way the
local job numbers it and an unreadable record stays a record (its error kept). Each part is a
Parquet file of ``part_rows`` consecutive records with the columns ``row`` (1-based record
number), ``line`` and ``record`` (the :class:`~multimodal_cat.feeds.read.RawRow`, pickled, so
hostile values of any type survive the trip unchanged). A part is written to a temporary name
and renamed; the manifest (``staged.json``), written last, says staging finished and records
the number of records, the parts' row ranges and a digest of the rows
(:class:`~multimodal_cat.feeds.resume.RowDigest`), which a resume checks against the feed.

Example:
    >>> import pathlib, tempfile
    >>> from multimodal_cat.feeds.read import FeedReader
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "feed.csv").write_text("title\\nBlue jacket\\nRed shoes\\nGreen hat\\n")
    >>> with FeedReader(folder / "feed.csv") as reader:
    ...     staged = stage_feed(reader, folder / "stage", part_rows=2, progress=False)
    >>> staged.rows, [(p.first, p.last) for p in staged.parts]
    (3, [(1, 2), (3, 3)])
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from multimodal_cat._progress import progress_bar
from multimodal_cat.errors import optional_import
from multimodal_cat.feeds.job import chunked
from multimodal_cat.feeds.read import FeedReader, RawRow
from multimodal_cat.feeds.resume import RowDigest
from multimodal_cat.feeds.write import ResumeError

MANIFEST = "staged.json"


@dataclass
class StagedPart:
    """One Parquet part of a staged feed: its file name and first and last record numbers."""

    file: str
    first: int
    last: int


@dataclass
class StagedFeed:
    """A staged feed: its folder, record count, parts and the digest of its rows."""

    folder: Path
    rows: int
    digest: str
    parts: list[StagedPart] = field(default_factory=list)

    def paths(self, parts: list[StagedPart] | None = None) -> list[str]:
        """Absolute paths of ``parts`` (default: all)."""
        return [str(self.folder / p.file) for p in (self.parts if parts is None else parts)]


def stage_feed(
    reader: FeedReader, folder: Path, *, part_rows: int = 1024, progress: bool = True
) -> StagedFeed:
    """Read every record of ``reader`` into Parquet parts under ``folder`` (created).

    Args:
        reader: An open feed (not yet iterated).
        folder: Where the parts and the manifest go.
        part_rows: Records per part (a resume redoes at most the parts in flight).
        progress: Show a progress bar.

    Returns:
        The :class:`StagedFeed`, also recorded in ``folder/staged.json``.
    """
    pq = optional_import("pyarrow.parquet", extra="ray", purpose="Staging a feed for Ray")
    folder.mkdir(parents=True, exist_ok=True)
    digest = RowDigest()
    staged = StagedFeed(folder, 0, "")
    name = os.path.basename(str(reader.path or "stdin"))
    with progress_bar(unit="row", disable=not progress, desc=f"staging {name}") as bar:
        for chunk in chunked(iter(reader), part_rows):
            for raw in chunk:
                digest.update(raw)
            part = StagedPart(f"part-{len(staged.parts):05d}.parquet", chunk[0].number, chunk[-1].number)
            temp = folder / f".{part.file}.tmp"
            pq.write_table(encode_records(chunk), temp)
            os.replace(temp, folder / part.file)
            staged.parts.append(part)
            bar.update(len(chunk))
    staged.rows, staged.digest = digest.rows, digest.hexdigest()
    _write_manifest(staged)
    return staged


def load_staged(folder: Path) -> StagedFeed | None:
    """The staged feed recorded in ``folder``, or ``None`` when staging did not finish."""
    try:
        state = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        parts = [StagedPart(**p) for p in state["parts"]]
        return StagedFeed(folder, int(state["rows"]), str(state["digest"]), parts)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_same_feed(reader: FeedReader, staged: StagedFeed) -> None:
    """Refuse a resume when the feed's records are not the ones staged (the feed changed).

    Raises:
        ResumeError: Another number of records, or other records.
    """
    digest = RowDigest()
    for raw in reader:
        digest.update(raw)
    if digest.rows != staged.rows or digest.hexdigest() != staged.digest:
        found = (
            f"now has {digest.rows:,} records, not the {staged.rows:,}"
            if digest.rows != staged.rows
            else "records are not the ones"
        )
        raise ResumeError(
            f"cannot resume: the feed {found} staged by the first run (it changed since); "
            "rerun without --resume to start over"
        )


def read_records(staged: StagedFeed, numbers: list[int]) -> list[RawRow]:
    """The staged records numbered ``numbers`` (only the parts that hold them are read)."""
    pq = optional_import("pyarrow.parquet", extra="ray", purpose="Staging a feed for Ray")
    wanted, out = set(numbers), []
    for part in staged.parts:
        if any(part.first <= n <= part.last for n in wanted):
            records = decode_records(pq.read_table(staged.folder / part.file))
            out += [raw for raw in records if raw.number in wanted]
    return out


def read_parts(batch: Any, skip: frozenset[int] = frozenset()) -> Any:
    """The staged records of the parts named in ``batch["path"]``, less the rows in ``skip``
    (a batch function for Ray: one block per part)."""
    pa = optional_import("pyarrow", extra="ray", purpose="Staging a feed for Ray")
    pq = optional_import("pyarrow.parquet", extra="ray", purpose="Staging a feed for Ray")

    table = pa.concat_tables([pq.read_table(p) for p in batch.column("path").to_pylist()])
    if skip:
        keep = [r not in skip for r in table.column("row").to_pylist()]
        table = table.filter(pa.array(keep, pa.bool_()))
    return table


def encode_records(records: list[RawRow]) -> Any:
    """A Parquet-ready table of records: ``row``, ``line`` and the pickled ``record``."""
    pa = optional_import("pyarrow", extra="ray", purpose="Staging a feed for Ray")
    return pa.table(
        {
            "row": pa.array([r.number for r in records], pa.int64()),
            "line": pa.array([r.line for r in records], pa.int64()),
            "record": pa.array([pickle.dumps(r, protocol=5) for r in records], pa.binary()),
        }
    )


def decode_records(batch: Any) -> list[RawRow]:
    """The records of a staged batch (a pyarrow table with a ``record`` column)."""
    return [pickle.loads(value) for value in batch.column("record").to_pylist()]


def _write_manifest(staged: StagedFeed) -> None:
    state = {"rows": staged.rows, "digest": staged.digest, "parts": [asdict(p) for p in staged.parts]}
    temp = staged.folder / f".{MANIFEST}.tmp"
    temp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temp, staged.folder / MANIFEST)
