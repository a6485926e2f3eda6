"""Hand memory that the encoders freed back to the operating system during long feed jobs.

Encoding a batch allocates large temporary buffers. glibc's allocator keeps much of what is
freed for reuse (and, after large frees, raises its threshold for returning memory directly),
so over a long feed whose texts miss the embedding cache the process's resident memory stays
well above what is allocated. :func:`release_freed_memory` asks glibc to return those free
pages; elsewhere it does nothing. Measured on a 20k-row zero-shot job with an empty cache
(2026-11-29): peak RSS 928 MB without it, 719 MB with it every 20 batches, same speed.

Example:
    >>> release_freed_memory() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim() -> object | None:
    """glibc's ``malloc_trim``, or ``None`` on other C libraries and platforms."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS (glibc only); ``True`` if it could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)  # type: ignore[operator]
    return True
