"""What a resumable feed job records about itself, so ``--resume`` continues only the same job.

The checkpoint (:mod:`multimodal_cat.feeds.write`) stores a fingerprint of everything that
shapes the output: the feed (path, size), the shard, the predictor (its own ``fingerprint``
when it has one, else its class and settings, with a digest of any model weights), the column
map, the mappings, kept columns and image rules. It also stores a digest of the input rows
already done (:class:`RowDigest`), checked again while those rows are skipped, so a feed
changed under the same name is refused instead of continued.

Example:
    >>> class Fixed:
    ...     def __init__(self):
    ...         self.threshold = 0.5
    >>> predictor_fingerprint(Fixed())
    'Fixed(threshold=0.5)'
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from multimodal_cat.feeds.read import RawRow
from multimodal_cat.feeds.write import ResumeError

__all__ = [
    "RowDigest",
    "job_fingerprint",
    "predictor_fingerprint",
    "skip_done_rows",
    "weights_digest",
]

# Predictor settings that do not change what is predicted (speed, caching, display).
_NEUTRAL = frozenset(
    {"cache", "num_threads", "batch_size", "progress", "workers", "device", "verbose"}
)
_MAX_ITEMS = 64


def predictor_fingerprint(predictor: Any) -> str:
    """A stable text identifying what ``predictor`` predicts.

    Uses ``predictor.fingerprint`` (an attribute or a method returning text) when the object
    has one; otherwise its class name and public settings, recursively (nested objects by
    their ``key``/``name``, ``torch`` modules by a digest of their weights). Memory addresses
    never appear, so the same predictor gives the same text in another process.
    """
    own = getattr(predictor, "fingerprint", None)
    if callable(own):
        own = own()
    if isinstance(own, str) and own:
        return own
    return _describe(predictor, 0)


def weights_digest(module: Any) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a module's ``state_dict``."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _describe(value: Any, depth: int) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, os.PathLike):
        return repr(str(Path(value).resolve()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return "[" + ", ".join(_describe(v, depth + 1) for v in items[:_MAX_ITEMS]) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=str)[:_MAX_ITEMS]
        return "{" + ", ".join(f"{k}: {_describe(value[k], depth + 1)}" for k in keys) + "}"
    kind = type(value).__qualname__
    if callable(getattr(value, "state_dict", None)) and callable(
        getattr(value, "parameters", None)
    ):
        return f"{kind}(weights sha256:{weights_digest(value)})"
    for attribute in ("key", "name"):
        label = getattr(value, attribute, None)
        if isinstance(label, str) and not callable(label):
            size = len(value) if hasattr(value, "__len__") else None
            return f"{kind}({label!r}{'' if size is None else f', {size}'})"
    if depth >= 3 or not hasattr(value, "__dict__"):
        return kind
    settings = {
        k: v
        for k, v in vars(value).items()
        if not k.startswith("_")
        and not k.endswith("_")
        and k not in _NEUTRAL
        and not inspect.isroutine(v)
    }
    inner = ", ".join(f"{k}={_describe(v, depth + 1)}" for k, v in sorted(settings.items()))
    return f"{kind}({inner})"


class RowDigest:
    """Running SHA-256 of the input rows a job has consumed (number, line, values, error)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.rows = 0

    def update(self, raw: RawRow) -> None:
        record = [raw.number, raw.line, raw.values, raw.error]
        text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        self._digest.update(text.encode("utf-8", "surrogatepass") + b"\n")
        self.rows += 1

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def job_fingerprint(
    feed: Any,
    reader: Any,
    predictor: Any,
    columns: Any,
    mapper: Any,
    names: Sequence[str],
    keep: dict[str, str],
    images: Any,
    **options: Any,
) -> dict[str, Any]:
    """Everything that shapes a feed job's output (JSON-serializable); ``options`` are the
    job's own settings (shard, min_confidence, review threshold...)."""
    return {
        "feed": _feed_name(feed),
        "feed_bytes": reader.path.stat().st_size if reader.path else None,
        "format": reader.format,
        "predictor": predictor_fingerprint(predictor),
        "column_map": repr(columns),
        "mapper": None if mapper is None else predictor_fingerprint(mapper),
        "map_to": list(names),
        "keep": dict(keep),
        "images": _describe(images, 1),
        **options,
    }


def skip_done_rows(
    rows: Iterator[RawRow], done: int, recorded: str, digest: RowDigest
) -> Iterator[RawRow]:
    """Skip the ``done`` rows an earlier run wrote, checking they are the same rows; yield the rest.

    Args:
        rows: This job's input rows, in order.
        done: Rows already written (from the checkpoint).
        recorded: The checkpoint's digest of those rows (``""``: not recorded, not checked).
        digest: Updated with every skipped row (the job goes on updating it).

    Raises:
        ResumeError: The feed has fewer rows than ``done`` or other ones.
    """
    for raw in rows:
        if digest.rows >= done:
            yield raw
            continue
        digest.update(raw)
        if digest.rows == done and recorded and recorded != digest.hexdigest():
            raise ResumeError(
                f"cannot resume: the first {done:,} rows of the feed are not the rows already "
                "written (the feed changed since the first run); rerun without --resume to "
                "start over"
            )
    if digest.rows < done:
        raise ResumeError(
            f"cannot resume: the feed now has {digest.rows:,} rows for this shard, fewer than "
            f"the {done:,} already written; it changed since the first run (rerun without "
            "--resume to start over)"
        )


def _feed_name(feed: Any) -> str:
    if not isinstance(feed, (str, Path)):
        return "<stream>"
    return "<stdin>" if str(feed) == "-" else str(Path(feed).resolve())
