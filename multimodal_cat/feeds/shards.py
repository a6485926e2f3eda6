"""Split one feed between several processes and merge their outputs back in input order.

Shard ``i`` of ``n`` takes the records whose number ``r`` (1-based) has ``(r - 1) % n == i``,
so every process streams the feed and no total count is needed. Each shard writes its own
part (``out.shard-0-of-4.csv``...); :func:`merge_shards` interleaves the parts by the ``row``
column, which restores the input order.

Example:
    >>> resolve_shard("1/4")
    (1, 4)
    >>> shard_path("out.csv", 1, 4).name
    'out.shard-1-of-4.csv'
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import time
from pathlib import Path
from typing import Any

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.feeds.write import checkpoint_path, output_format, read_output, write_in_order

# Key, in a finished part's checkpoint counts, of the number of records in the whole feed.
FEED_RECORDS = "feed_records"


class ShardError(MultimodalCatError, ValueError):
    """A bad ``--shard`` value, or shard parts that cannot be merged."""


def resolve_shard(spec: str | tuple[int, int] | None) -> tuple[int, int]:
    """Parse ``"i/n"``, ``(i, n)``, ``"auto"`` or ``None`` into ``(index, count)``.

    ``"auto"`` reads ``RANK`` and ``WORLD_SIZE``, which ``accelerate launch`` (and torchrun)
    set for each process; without them it means a single shard.
    """
    if spec is None:
        return 0, 1
    if spec == "auto":
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if isinstance(spec, str):
        index_text, sep, count_text = spec.partition("/")
        if not sep or not index_text.strip().isdigit() or not count_text.strip().isdigit():
            raise ShardError(
                f"expected --shard I/N with 0 <= I < N (e.g. 0/4) or 'auto', got {spec!r}"
            )
        spec = (int(index_text), int(count_text))
    index, count = spec
    if count < 1 or not 0 <= index < count:
        raise ShardError(
            f"expected a shard index in [0, {count}) and a count >= 1, got {index}/{count}"
        )
    return index, count


def shard_path(output: str | Path, index: int, count: int) -> Path:
    """The part written by shard ``index`` of ``count`` for ``output``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def merge_shards(output: str | Path, count: int, *, remove_parts: bool = False) -> int:
    """Merge the ``count`` complete shard parts of ``output`` into ``output``, in input order.

    Before anything is written, the parts are checked to be the ``count`` parts of ONE job
    (same feed, predictor and options; part ``i`` is shard ``i`` of ``count``) and unchanged
    since they finished (size, and digest for CSV and JSON lines). While merging, every row
    number from 1 to the feed's record count (recorded by each part) must come exactly once:
    a missing tail is refused like a hole in the middle.

    Args:
        output: The final output path (the parts sit next to it).
        count: Number of shards.
        remove_parts: Delete the parts (and their checkpoints) after a successful merge.

    Returns:
        Number of rows written.

    Raises:
        ShardError: A part is missing, unfinished, changed, or of another job, or rows are
            missing between parts or at the end.
    """
    parts = [shard_path(output, i, count) for i in range(count)]
    states = [_finished_state(part, i, count) for i, part in enumerate(parts)]
    _check_one_job(parts, states)
    columns = states[0]["columns"]
    records = _feed_records(parts, states)
    total = sum(int(s["rows"]) for s in states)
    if records is not None and total != records:
        raise ShardError(
            f"the shard parts hold {total:,} rows but the feed has {records:,} records: "
            f"{'the tail of a part is missing' if total < records else 'rows are repeated'}; "
            "rerun the shards"
        )
    try:
        expected = _write_merged(output, parts, columns)
    except ShardError:
        for leftover in (Path(output), checkpoint_path(output)):
            leftover.unlink(missing_ok=True)  # never leave half a merge behind
        raise
    if remove_parts:
        for part in parts:
            part.unlink()
            checkpoint_path(part).unlink()
    return expected


def _write_merged(output: str | Path, parts: list[Path], columns: list[str]) -> int:
    merged = heapq.merge(*(read_output(p) for p in parts), key=lambda r: int(r["row"]))

    def gap(row: int, found: int | None) -> ShardError:
        return ShardError(f"row {row} is missing from the shard parts (found row {found})")

    return write_in_order(output, columns or [], merged, gap=gap).rows


def _finished_state(part: Path, index: int, count: int) -> dict[str, Any]:
    """The checkpoint of a finished, unchanged part, or a :class:`ShardError` saying why not."""
    state_file = checkpoint_path(part)
    if not part.exists() or not state_file.exists():
        raise ShardError(f"shard part {part} is missing; run that shard first")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        rows = int(state["rows"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ShardError(f"the checkpoint of shard part {part} cannot be read ({error})") from None
    if not state.get("complete"):
        raise ShardError(f"shard part {part} is unfinished ({rows:,} rows); resume it first")
    shard = (state.get("fingerprint") or {}).get("shard")
    if shard is not None and list(shard) != [index, count]:
        raise ShardError(
            f"{part} holds shard {shard[0]} of {shard[1]}, not shard {index} of {count}; "
            "merge with the count the shards were run with"
        )
    size = part.stat().st_size
    if state.get("size") is not None and size != state["size"]:
        raise ShardError(
            f"shard part {part} changed since it finished ({size:,} bytes, "
            f"{state['size']:,} when it finished); rerun that shard"
        )
    if output_format(part) != "parquet" and state.get("sha256") and _sha256(part) != state["sha256"]:
        raise ShardError(f"shard part {part} changed since it finished (its digest differs); rerun that shard")
    return state


def _check_one_job(parts: list[Path], states: list[dict[str, Any]]) -> None:
    """Refuse parts written by different jobs (another feed, model, options or columns)."""
    first = {k: v for k, v in (states[0].get("fingerprint") or {}).items() if k != "shard"}
    for part, state in zip(parts[1:], states[1:], strict=True):
        if state.get("columns") != states[0].get("columns"):
            raise ShardError(f"shard part {part} has other columns than {parts[0]}")
        other = {k: v for k, v in (state.get("fingerprint") or {}).items() if k != "shard"}
        differ = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        if differ:
            raise ShardError(
                f"shard parts {parts[0]} and {part} were written by different jobs "
                f"({', '.join(differ)} differ); run every shard with the same feed and options"
            )


def _feed_records(parts: list[Path], states: list[dict[str, Any]]) -> int | None:
    """The feed's record count the parts recorded (``None`` for parts written before it was)."""
    found = {int(s["counts"][FEED_RECORDS]) for s in states if FEED_RECORDS in s.get("counts", {})}
    if len(found) > 1:
        raise ShardError(
            f"the shard parts of {parts[0]} read feeds of different lengths "
            f"({', '.join(f'{n:,}' for n in sorted(found))} records); rerun the shards on one feed"
        )
    return found.pop() if found else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wait_and_merge(
    output: str | Path, count: int, *, poll_s: float = 2.0, stall_s: float = 600.0
) -> int:
    """Wait until every shard part of ``output`` is complete, then :func:`merge_shards`.

    Meant for shard 0 under ``accelerate launch``: it finishes its own part, then waits for
    the others. Gives up when no part has written a row for ``stall_s`` seconds.

    Raises:
        ShardError: The other shards stalled (crashed?) or cannot be merged.
    """
    last_change, last_state = time.monotonic(), None
    while True:
        states = [_state(checkpoint_path(shard_path(output, i, count))) for i in range(count)]
        if all(s.get("complete") for s in states):
            return merge_shards(output, count)
        progress = [s.get("rows", -1) for s in states]
        if progress != last_state:
            last_change, last_state = time.monotonic(), progress
        elif time.monotonic() - last_change > stall_s:
            raise ShardError(
                f"shard parts stopped progressing for {stall_s:g} s (rows per shard: {progress}); "
                f"finish them (--resume) and run --merge-shards {count}"
            )
        time.sleep(poll_s)


def _state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
