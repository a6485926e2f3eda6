"""On-disk embedding cache keyed by (encoder key, content hash).

One SQLite file (``<root>/embeddings.sqlite``) in WAL mode: each ``put_many`` is one
transaction, so a process killed with ``kill -9`` loses at most the batch it was writing
and never corrupts earlier ones; readers in other processes see committed rows while a
writer works. Vectors are stored as float32 blobs in an ordinary rowid table (the key pair
is a unique index): a ``WITHOUT ROWID`` table, used before, was measured 4.3x slower to
write, 3.2x slower to read and 2.2x larger, because its b-tree carries the blobs. A cache
in the old layout is converted once, in place, when it is first opened for writing.

A cache is never a reason for a job to stop: a file that is not a database or is damaged is
set aside (renamed ``embeddings.sqlite.broken-<time>``, with a warning naming it) and a new
one started; a read-only cache is used read-only (nothing new stored), and one that cannot
be opened at all is bypassed; each with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from multimodal_cat._progress import plural, progress_bar
from multimodal_cat.encoders._arrays import batched, l2_normalize
from multimodal_cat.encoders.registry import cache_root
from multimodal_cat.errors import InputTypeError, InvalidArgumentError

__all__ = ["EmbeddingCache", "content_hash", "encode_cached"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_COLUMNS = """
    encoder_key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (encoder_key, content_hash)
"""
_SCHEMA = f"CREATE TABLE IF NOT EXISTS embeddings ({_COLUMNS})"
_SQL_CHUNK = 500  # stay below SQLite's bound-parameter limit


def content_hash(content: str | bytes) -> str:
    """SHA-256 hex digest of a text (UTF-8) or of raw bytes (e.g. an image file).

    Lone surrogates (text decoded from invalid bytes) are hashed as their UTF-8-like
    encoding instead of failing; every valid text hashes as its UTF-8 bytes.

    Example:
        >>> content_hash("red shoes")[:12]
        '61959b3a303f'
    """
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise InputTypeError(f"Expected str or bytes to hash; got {type(content).__name__}.")
    return hashlib.sha256(content).hexdigest()


class EmbeddingCache:
    """Embedding vectors on disk, keyed by (encoder key, content hash).

    Args:
        root: folder holding ``embeddings.sqlite``; default ``$MULTIMODAL_CAT_CACHE`` or
            ``~/.cache/multimodal_cat``. Created on first use.

    Attributes:
        mode: ``"read-write"``, ``"read-only"`` (nothing new is stored) or ``"off"`` (the cache
            could not be opened: every lookup misses); set on first use.

    Example:
        >>> import tempfile
        >>> cache = EmbeddingCache(tempfile.mkdtemp())
        >>> cache.put_many("text:minilm|pool=mean|max_length=64", {"ab12": np.ones(384)})
        >>> cache.get_many("text:minilm|pool=mean|max_length=64", ["ab12", "cd34"]).keys()
        dict_keys(['ab12'])
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.mode = "read-write"
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._opened = False
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self.root / "embeddings.sqlite"

    def _connection(self) -> sqlite3.Connection | None:
        if self._pid != os.getpid():  # reopen after fork
            self._conn, self._opened, self._pid = None, False, os.getpid()
        if not self._opened:
            self._opened = True
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection | None:
        """Open read-write; else read-only; else ``None`` (bypassed), warning each time."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            try:
                _prepare(conn, self.path)
            except BaseException:
                conn.close()
                raise
            self.mode = "read-write"
            return conn
        except sqlite3.OperationalError as error:
            if _is_damage(error):
                raise  # set aside by _run
            if self.path.is_file():
                return self._open_read_only(error)
            return self._bypass(f"cannot create {self.path} ({error})")
        except OSError as error:
            return self._bypass(f"cannot create {self.root} ({error.strerror})")

    def _open_read_only(self, why: Exception) -> sqlite3.Connection | None:
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?{flags}",
                    uri=True,
                    timeout=60,
                    check_same_thread=False,
                )
                conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM embeddings LIMIT 1)").fetchone()
            except sqlite3.DatabaseError:
                continue
            self.mode = "read-only"
            logger.warning(
                "embedding cache %s cannot be written (%s): using it read-only, new "
                "embeddings are not stored",
                self.path,
                why,
            )
            return conn
        return self._bypass(f"cannot open {self.path} ({why})")

    def _bypass(self, why: str) -> None:
        self.mode = "off"
        logger.warning("embedding cache bypassed: %s; embeddings are computed, not stored", why)
        return None

    def _set_aside(self, error: Exception) -> None:
        """Rename a damaged cache file (and its WAL files) and start a new one."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.broken-{stamp}-{os.getpid()}")
        try:
            for suffix in ("-wal", "-shm"):
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.rename(target.with_name(target.name + suffix))
            self.path.rename(target)
        except OSError as rename_error:
            self._opened, self._conn = (
                True,
                self._bypass(
                    f"{self.path} is damaged ({error}) and cannot be moved ({rename_error.strerror})"
                ),
            )
            return
        logger.warning(
            "embedding cache %s is damaged (%s): set aside as %s; starting a new cache",
            self.path,
            error,
            target,
        )
        self._opened = False

    def _run(self, action: Callable[[sqlite3.Connection], _T], default: _T) -> _T:
        """Run ``action`` on the connection; a damaged file is set aside and tried once more."""
        for attempt in range(2):
            try:
                conn = self._connection()
                return default if conn is None else action(conn)
            except sqlite3.DatabaseError as error:
                if not _is_damage(error) or attempt == 1:
                    if isinstance(error, sqlite3.OperationalError) and "readonly" in str(error):
                        self.mode = "read-only"
                        logger.warning(
                            "embedding cache %s is read-only (%s): new embeddings are not stored",
                            self.path,
                            error,
                        )
                        return default
                    raise
                self._set_aside(error)
        return default  # pragma: no cover

    def get_many(
        self, encoder_key: str, hashes: Sequence[str], dim: int | None = None
    ) -> dict[str, np.ndarray]:
        """Return the cached vectors among ``hashes`` (float32 arrays); misses are absent.

        An entry that cannot be right is left out, as a miss the caller recomputes (and
        overwrites): a vector holding NaN or infinite values, one whose bytes do not match
        its stored length, or one of another length than ``dim`` when ``dim`` is given.
        """
        unique = list(dict.fromkeys(hashes))
        rejected: list[str] = []

        def lookup(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for chunk in batched(unique, _SQL_CHUNK):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT content_hash, dim, vector FROM embeddings "
                    f"WHERE encoder_key = ? AND content_hash IN ({marks})",
                    (encoder_key, *chunk),
                )
                for digest, stored, blob in rows:
                    vector = _usable_vector(blob, stored, dim)
                    if vector is None:
                        rejected.append(digest)
                    else:
                        found[digest] = vector
            return found

        with self._lock:
            found = self._run(lookup, {})
        if rejected:
            logger.warning(
                "embedding cache %s: %d entr%s for %s held NaN values or the wrong length "
                "(expected %s); recomputing them", self.path, len(rejected),
                "y" if len(rejected) == 1 else "ies", encoder_key, dim or "their stored length",
            )
        return found

    def put_many(self, encoder_key: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store ``{content_hash: vector}`` for ``encoder_key`` in one transaction."""
        rows = []
        for digest, vector in vectors.items():
            array = np.asarray(vector, dtype=np.float32)
            if array.ndim != 1:
                raise InvalidArgumentError(
                    f"Expected 1-D vectors; got shape {array.shape} for hash {digest!r}."
                )
            if not np.isfinite(array).all():
                continue  # a broken encoder output is never stored (it would be served again)
            rows.append((encoder_key, digest, int(array.shape[0]), array.tobytes()))

        def store(conn: sqlite3.Connection) -> None:
            if self.mode != "read-write":
                return
            with conn:
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

        with self._lock:
            self._run(store, None)

    def count(self, encoder_key: str | None = None) -> int:
        """Number of cached vectors (for one encoder key, or all)."""

        def counted(conn: sqlite3.Connection) -> int:
            if encoder_key is None:
                return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            query = "SELECT COUNT(*) FROM embeddings WHERE encoder_key = ?"
            return conn.execute(query, (encoder_key,)).fetchone()[0]

        with self._lock:
            return self._run(counted, 0)

    def encoder_keys(self) -> list[str]:
        """The encoder keys that have cached vectors."""

        def keys(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT DISTINCT encoder_key FROM embeddings")
            return sorted(row[0] for row in rows)

        with self._lock:
            return self._run(keys, [])

    def close(self) -> None:
        """Close the connection (reopened automatically on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn, self._opened = None, False

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"


def _usable_vector(blob: Any, stored: Any, dim: int | None) -> np.ndarray | None:
    """The float32 vector of a cache row, or ``None`` when it cannot be right."""
    if not isinstance(blob, bytes) or not isinstance(stored, int) or stored < 1:
        return None
    if len(blob) != 4 * stored or (dim is not None and stored != dim):
        return None
    vector = np.frombuffer(blob, dtype=np.float32).copy()
    return vector if np.isfinite(vector).all() else None


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Whether an SQLite error means the file is not a (sound) database."""
    text = str(error).lower()
    return not isinstance(error, sqlite3.OperationalError) or any(
        s in text for s in ("malformed", "not a database", "disk image")
    )


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """WAL mode, the table, and a one-time conversion of the old ``WITHOUT ROWID`` layout."""
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if _old_layout(conn):
        conn.execute("BEGIN IMMEDIATE")  # one process converts; the others wait, then see it done
        try:
            if _old_layout(conn):
                logger.warning("embedding cache %s: converting to the rowid layout (once)", path)
                conn.execute(f"CREATE TABLE embeddings_rowid ({_COLUMNS})")
                conn.execute("INSERT INTO embeddings_rowid SELECT * FROM embeddings")
                conn.execute("DROP TABLE embeddings")
                conn.execute("ALTER TABLE embeddings_rowid RENAME TO embeddings")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the space is reused later
            conn.execute("VACUUM")
    with conn:
        conn.execute(_SCHEMA)


def _old_layout(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'embeddings'").fetchone()
    return row is not None and "WITHOUT ROWID" in row[0].upper()


def _default_hash(item: Any) -> str:
    if isinstance(item, (str, bytes)):
        return content_hash(item)
    if isinstance(item, os.PathLike):
        return content_hash(Path(item).read_bytes())
    raise InputTypeError(
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
    noun: str | None = None,
) -> np.ndarray:
    """Embed ``items`` with ``encoder``, computing only what ``cache`` lacks.

    Misses are deduplicated by hash, encoded ``chunk_size`` at a time and stored after
    each chunk, so an interrupted run resumes where it stopped. The cache holds raw
    pooled vectors; ``normalize`` applies to the returned array only. bf16 vectors are
    stored under ``encoder.key + "|bf16"``. Cached entries with NaN values or another length
    than ``encoder.dim`` are recomputed, and non-finite vectors are never stored.

    Args:
        encoder: a TextEncoder or ImageEncoder (anything with ``key`` and ``encode``).
        items: texts, or images / image paths / image bytes.
        hashes: one content hash per item; default ``content_hash`` of texts or bytes
            (for an ``os.PathLike`` path, of the file's bytes). Pass the hash of the image
            file bytes for images, so the cache survives file moves.
        cache: the cache (default ``EmbeddingCache()``).
        workers: passed to ``encoder.encode`` when above 1 (see ``TextEncoder.encode``).
        progress: show a bar named in words ("encoding 9,583 photos") that moves every
            ``4 * batch_size * workers`` items.
        noun: what an item is, for the bar ("category name"); default "photo" for an image
            encoder, else "text".

    Returns:
        float32 array (len(items), encoder.dim), rows in input order.

    Example:
        >>> enc = TextEncoder.from_name("minilm", max_length=64)  # doctest: +SKIP
        >>> encode_cached(enc, ["red shoes"], cache=EmbeddingCache()).shape  # doctest: +SKIP
        (1, 384)
    """
    hashes = list(hashes) if hashes is not None else [_default_hash(item) for item in items]
    if len(hashes) != len(items):
        raise InvalidArgumentError(f"Expected one hash per item ({len(items)}); got {len(hashes)}.")
    cache = cache if cache is not None else EmbeddingCache()
    key = encoder.key + ("|bf16" if bf16 else "")
    found = cache.get_many(key, hashes, dim=getattr(encoder, "dim", None))
    first_index: dict[str, int] = {}
    for index, digest in enumerate(hashes):
        if digest not in found:
            first_index.setdefault(digest, index)
    misses = list(first_index.items())
    noun = noun or ("photo" if key.startswith("image") else "text")
    bar = progress_bar(
        total=len(misses), desc=f"encoding {plural(len(misses), noun)}", unit=noun, disable=not progress
    )
    extra = {"workers": workers} if workers > 1 else {}
    # The bar moves within a chunk, every few batches (text encoders still sort each part by
    # length to limit padding).
    step = batch_size * max(workers, 1) * 4
    for chunk in batched(misses, chunk_size):
        parts = []
        for part in batched(chunk, step):
            batch = [items[index] for _, index in part]
            parts.append(
                encoder.encode(batch, batch_size=batch_size, normalize=False, bf16=bf16, **extra)
            )
            bar.update(len(part))
        vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        new = {digest: vectors[row] for row, (digest, _) in enumerate(chunk)}
        cache.put_many(key, new)
        found.update(new)
    bar.close()
    out = np.stack([found[digest] for digest in hashes]) if hashes else np.zeros((0, encoder.dim))
    out = out.astype(np.float32, copy=False)
    return l2_normalize(out) if normalize else out
