"""On-disk embedding cache keyed by (encoder key, content hash).

One SQLite file (``<root>/embeddings.sqlite``) in WAL mode: each ``put_many`` is one
transaction, so a process killed with ``kill -9`` loses at most the batch it was writing
and never corrupts earlier ones; readers in other processes see committed rows while a
writer works. Vectors are stored as float32 blobs.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from multimodal_cat.encoders._arrays import batched, l2_normalize
from multimodal_cat.encoders.registry import cache_root

__all__ = ["EmbeddingCache", "content_hash", "encode_cached"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    encoder_key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (encoder_key, content_hash)
) WITHOUT ROWID
"""
_SQL_CHUNK = 500  # stay below SQLite's bound-parameter limit


def content_hash(content: str | bytes) -> str:
    """SHA-256 hex digest of a text (UTF-8) or of raw bytes (e.g. an image file).

    Example:
        >>> content_hash("red shoes")[:12]
        '61959b3a303f'
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(f"Expected str or bytes to hash; got {type(content).__name__}.")
    return hashlib.sha256(content).hexdigest()


class EmbeddingCache:
    """Embedding vectors on disk, keyed by (encoder key, content hash).

    Args:
        root: folder holding ``embeddings.sqlite``; default ``$MULTIMODAL_CAT_CACHE`` or
            ``~/.cache/multimodal_cat``. Created on first use.

    Example:
        >>> cache = EmbeddingCache("/tmp/mc-cache")  # doctest: +SKIP
        >>> cache.put_many("text:minilm|pool=mean|max_length=64", {"ab12": np.ones(384)})
        >>> cache.get_many("text:minilm|pool=mean|max_length=64", ["ab12", "cd34"]).keys()
        dict_keys(['ab12'])
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self.root / "embeddings.sqlite"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # reopen after fork
            self.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            with conn:
                conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, encoder_key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``hashes`` (float32 arrays); misses are absent."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            conn = self._connection()
            for chunk in batched(unique, _SQL_CHUNK):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT content_hash, dim, vector FROM embeddings "
                    f"WHERE encoder_key = ? AND content_hash IN ({marks})",
                    (encoder_key, *chunk),
                )
                for digest, dim, blob in rows:
                    found[digest] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        return found

    def put_many(self, encoder_key: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store ``{content_hash: vector}`` for ``encoder_key`` in one transaction."""
        rows = []
        for digest, vector in vectors.items():
            array = np.asarray(vector, dtype=np.float32)
            if array.ndim != 1:
                raise ValueError(
                    f"Expected 1-D vectors; got shape {array.shape} for hash {digest!r}."
                )
            rows.append((encoder_key, digest, int(array.shape[0]), array.tobytes()))
        with self._lock:
            conn = self._connection()
            with conn:
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def count(self, encoder_key: str | None = None) -> int:
        """Number of cached vectors (for one encoder key, or all)."""
        with self._lock:
            conn = self._connection()
            if encoder_key is None:
                return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            query = "SELECT COUNT(*) FROM embeddings WHERE encoder_key = ?"
            return conn.execute(query, (encoder_key,)).fetchone()[0]

    def encoder_keys(self) -> list[str]:
        """The encoder keys that have cached vectors."""
        with self._lock:
            rows = self._connection().execute("SELECT DISTINCT encoder_key FROM embeddings")
            return sorted(row[0] for row in rows)

    def close(self) -> None:
        """Close the connection (reopened automatically on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"


def _default_hash(item: Any) -> str:
    if isinstance(item, (str, bytes)):
        return content_hash(item)
    if isinstance(item, os.PathLike):
        return content_hash(Path(item).read_bytes())
    raise TypeError(
        f"Cannot hash a {type(item).__name__}: pass `hashes` (e.g. content_hash of the file bytes)."
    )


def encode_cached(
    encoder: Any,
    items: Sequence[Any],
    hashes: Sequence[str] | None = None,
    cache: EmbeddingCache | None = None,
    *,
    batch_size: int = 32,
    chunk_size: int = 512,
    normalize: bool = False,
    bf16: bool = False,
    progress: bool = False,
    workers: int = 1,
) -> np.ndarray:
    """Embed ``items`` with ``encoder``, computing only what ``cache`` lacks.

    Misses are deduplicated by hash, encoded ``chunk_size`` at a time and stored after
    each chunk, so an interrupted run resumes where it stopped. The cache holds raw
    pooled vectors; ``normalize`` applies to the returned array only. bf16 vectors are
    stored under ``encoder.key + "|bf16"``.

    Args:
        encoder: a TextEncoder or ImageEncoder (anything with ``key`` and ``encode``).
        items: texts, or images / image paths / image bytes.
        hashes: one content hash per item; default ``content_hash`` of texts or bytes
            (for an ``os.PathLike`` path, of the file's bytes). Pass the hash of the image
            file bytes for images, so the cache survives file moves.
        cache: the cache (default ``EmbeddingCache()``).
        workers: passed to ``encoder.encode`` when above 1 (see ``TextEncoder.encode``).

    Returns:
        float32 array (len(items), encoder.dim), rows in input order.

    Example:
        >>> enc = TextEncoder.from_name("minilm", max_length=64)  # doctest: +SKIP
        >>> encode_cached(enc, ["red shoes"], cache=EmbeddingCache()).shape  # doctest: +SKIP
        (1, 384)
    """
    hashes = list(hashes) if hashes is not None else [_default_hash(item) for item in items]
    if len(hashes) != len(items):
        raise ValueError(f"Expected one hash per item ({len(items)}); got {len(hashes)}.")
    cache = cache if cache is not None else EmbeddingCache()
    key = encoder.key + ("|bf16" if bf16 else "")
    found = cache.get_many(key, hashes)
    first_index: dict[str, int] = {}
    for index, digest in enumerate(hashes):
        if digest not in found:
            first_index.setdefault(digest, index)
    misses = list(first_index.items())
    bar = tqdm(total=len(misses), disable=not progress, unit="item", desc=f"encode {key}")
    extra = {"workers": workers} if workers > 1 else {}
    for chunk in batched(misses, chunk_size):
        batch = [items[index] for _, index in chunk]
        vectors = encoder.encode(batch, batch_size=batch_size, normalize=False, bf16=bf16, **extra)
        new = {digest: vectors[row] for row, (digest, _) in enumerate(chunk)}
        cache.put_many(key, new)
        found.update(new)
        bar.update(len(chunk))
    bar.close()
    out = np.stack([found[digest] for digest in hashes]) if hashes else np.zeros((0, encoder.dim))
    out = out.astype(np.float32, copy=False)
    return l2_normalize(out) if normalize else out
