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

import heapq
import json
import os
import time
from pathlib import Path

from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.feeds.write import OutputWriter, checkpoint_path, read_output


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

    Args:
        output: The final output path (the parts sit next to it).
        count: Number of shards.
        remove_parts: Delete the parts (and their checkpoints) after a successful merge.

    Returns:
        Number of rows written.

    Raises:
        ShardError: A part is missing or unfinished, or rows are missing between parts.
    """
    parts = [shard_path(output, i, count) for i in range(count)]
    columns, counts = None, {"ok": 0, "degraded": 0, "error": 0}
    for part in parts:
        state_file = checkpoint_path(part)
        if not part.exists() or not state_file.exists():
            raise ShardError(f"shard part {part} is missing; run that shard first")
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if not state.get("complete"):
            raise ShardError(
                f"shard part {part} is unfinished ({state['rows']:,} rows); resume it first"
            )
        if columns is not None and state["columns"] != columns:
            raise ShardError(f"shard part {part} has other columns than {parts[0]}")
        columns = state["columns"]
        for key in counts:
            counts[key] += state["counts"].get(key, 0)
    merged = heapq.merge(*(read_output(p) for p in parts), key=lambda r: int(r["row"]))
    expected = 1
    with OutputWriter(output, columns or []) as writer:
        batch: list[dict] = []
        for row in merged:
            if int(row["row"]) != expected:
                raise ShardError(
                    f"row {expected} is missing from the shard parts (found row {row['row']})"
                )
            expected += 1
            batch.append(row)
            if len(batch) >= 5_000:
                writer.write_batch(batch, counts)
                batch = []
        writer.write_batch(batch, counts)
        writer.finish()
    checkpoint_path(output).unlink(missing_ok=True)  # the merged output is finished
    if remove_parts:
        for part in parts:
            part.unlink()
            checkpoint_path(part).unlink()
    return expected - 1


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
