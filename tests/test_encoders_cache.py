from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from multimodal_cat.encoders import EmbeddingCache, content_hash, encode_cached

KEY = "text:fake|pool=mean|max_length=8"


class FakeEncoder:
    """Deterministic stand-in for TextEncoder that records what it encodes."""

    key = KEY
    dim = 4

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, items, batch_size=32, normalize=False, progress=False, *, bf16=False):
        self.seen.extend(items)
        return np.array([[len(t), t.count("a"), 1.0, 2.0] for t in items], dtype=np.float32)


def test_content_hash() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_hash("") == empty == content_hash(b"")
    assert content_hash("é") == content_hash("é".encode())
    with pytest.raises(TypeError, match="str or bytes"):
        content_hash(3)  # type: ignore[arg-type]


def test_round_trip_and_misses(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    vectors = {"h1": np.arange(4, dtype=np.float64), "h2": np.ones(4)}
    cache.put_many(KEY, vectors)
    got = cache.get_many(KEY, ["h1", "h2", "h3", "h1"])
    assert set(got) == {"h1", "h2"}
    assert got["h1"].dtype == np.float32
    np.testing.assert_array_equal(got["h1"], [0, 1, 2, 3])
    assert cache.get_many("other-key", ["h1"]) == {}
    cache.close()
    reopened = EmbeddingCache(tmp_path)
    assert reopened.count(KEY) == 2 and reopened.encoder_keys() == [KEY]
    with pytest.raises(ValueError, match="1-D"):
        reopened.put_many(KEY, {"bad": np.ones((2, 2))})


def test_many_hashes_beyond_sql_parameter_limit(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many(KEY, {str(i): np.full(2, i) for i in range(1200)})
    assert len(cache.get_many(KEY, [str(i) for i in range(1300)])) == 1200


def test_encode_cached_encodes_only_misses(tmp_path: Path) -> None:
    cache, encoder = EmbeddingCache(tmp_path), FakeEncoder()
    texts = ["aa", "b", "aa", "ccc"]
    first = encode_cached(encoder, texts, cache=cache, chunk_size=1)
    assert encoder.seen == ["aa", "b", "ccc"]  # duplicates encoded once
    np.testing.assert_array_equal(first[0], first[2])
    second = encode_cached(encoder, [*texts, "dada"], cache=cache, normalize=True)
    assert encoder.seen[3:] == ["dada"]
    np.testing.assert_allclose(np.linalg.norm(second, axis=1), 1.0, rtol=1e-6)
    assert cache.count(KEY) == 4
    with pytest.raises(ValueError, match="one hash per item"):
        encode_cached(encoder, texts, hashes=["x"], cache=cache)
    assert encode_cached(encoder, [], cache=cache).shape == (0, 4)


WRITER = """
import sys, numpy as np
from multimodal_cat.encoders import EmbeddingCache
cache = EmbeddingCache(sys.argv[1])
i = 0
while True:
    cache.put_many("k", {f"{i}-{j}": np.full(64, i, dtype=np.float32) for j in range(200)})
    i += 1
"""


def test_survives_kill_9_with_a_concurrent_reader(tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    reader = EmbeddingCache(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if reader.path.exists() and reader.count("k") >= 600:
                break
            time.sleep(0.1)
    finally:
        writer.kill()  # SIGKILL, mid-transaction most likely
        writer.wait()
    reader.close()
    count = EmbeddingCache(tmp_path).count("k")
    assert count >= 600 and count % 200 == 0  # whole transactions only
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    got = EmbeddingCache(tmp_path).get_many("k", ["0-0", "2-199"])
    np.testing.assert_array_equal(got["2-199"], np.full(64, 2))
