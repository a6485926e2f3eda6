"""The embedding cache: rowid layout, old caches converted, damaged or read-only caches survived."""

from __future__ import annotations

import logging
import os
import sqlite3

import numpy as np
import pytest

from multimodal_cat.encoders import EmbeddingCache

KEY = "text:fake|pool=mean|max_length=8"
OLD_SCHEMA = """
CREATE TABLE embeddings (
    encoder_key TEXT NOT NULL, content_hash TEXT NOT NULL, dim INTEGER NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (encoder_key, content_hash)
) WITHOUT ROWID
"""


def _table_sql(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name='embeddings'").fetchone()[0]


def test_new_caches_use_an_ordinary_rowid_table(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(KEY, {"h": np.ones(3)})
    cache.close()
    assert "WITHOUT ROWID" not in _table_sql(tmp_path / "embeddings.sqlite").upper()


def test_an_old_without_rowid_cache_is_converted_and_keeps_its_vectors(tmp_path, caplog):
    path = tmp_path / "embeddings.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_SCHEMA)
        rows = [(KEY, f"h{i}", 2, np.full(2, i, np.float32).tobytes()) for i in range(50)]
        conn.executemany("INSERT INTO embeddings VALUES (?, ?, ?, ?)", rows)
    with caplog.at_level(logging.WARNING):
        cache = EmbeddingCache(tmp_path)
        got = cache.get_many(KEY, ["h7", "h49", "nope"])
    assert sorted(got) == ["h49", "h7"] and got["h7"].tolist() == [7.0, 7.0]
    assert cache.count(KEY) == 50 and "converting to the rowid layout" in caplog.text
    cache.put_many(KEY, {"h7": np.zeros(2)})  # INSERT OR REPLACE still replaces
    assert cache.get_many(KEY, ["h7"])["h7"].tolist() == [0.0, 0.0] and cache.count() == 50
    cache.close()
    assert "WITHOUT ROWID" not in _table_sql(path).upper()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_cache_is_set_aside_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "embeddings.sqlite"
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    else:
        cache = EmbeddingCache(tmp_path)
        cache.put_many(KEY, {f"h{i}": np.ones(64) for i in range(2000)})
        cache.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING):
        cache = EmbeddingCache(tmp_path)
        found = cache.get_many(KEY, [f"h{i}" for i in range(2000)])
        cache.put_many(KEY, {"fresh": np.ones(4)})
    moved = [p.name for p in tmp_path.iterdir() if ".broken-" in p.name]
    assert moved and str(path) in caplog.text and moved[0].split("-wal")[0] in caplog.text
    assert cache.get_many(KEY, ["fresh"])["fresh"].shape == (4,) and cache.mode == "read-write"
    assert damage == "truncated" or found == {}


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root ignores modes")
def test_a_read_only_cache_is_used_read_only(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(KEY, {"h": np.ones(3)})
    cache.close()
    (tmp_path / "embeddings.sqlite").chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with caplog.at_level(logging.WARNING):
            cache = EmbeddingCache(tmp_path)
            assert cache.get_many(KEY, ["h"])["h"].shape == (3,)
            cache.put_many(KEY, {"new": np.ones(3)})  # not stored, no error
        assert cache.mode == "read-only" and "read-only" in caplog.text
    finally:
        tmp_path.chmod(0o755)


def test_a_read_only_cache_file_is_used_read_only(tmp_path, caplog, monkeypatch):
    """Simulated with SQLite's own read-only mode, so it holds for root too."""
    cache = EmbeddingCache(tmp_path)
    cache.put_many(KEY, {"h": np.ones(3)})
    cache.close()
    real_connect = sqlite3.connect

    def read_only(database, *args, **kwargs):
        if not kwargs.get("uri"):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with caplog.at_level(logging.WARNING):
        cache = EmbeddingCache(tmp_path)
        assert cache.get_many(KEY, ["h"])["h"].shape == (3,)
        cache.put_many(KEY, {"new": np.ones(3)})
    assert cache.mode == "read-only" and str(tmp_path / "embeddings.sqlite") in caplog.text
    assert cache.count() == 1


def test_a_cache_that_cannot_be_created_is_bypassed(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING):
        cache = EmbeddingCache(tmp_path / "file" / "cache")
        assert cache.get_many(KEY, ["h"]) == {}
        cache.put_many(KEY, {"h": np.ones(2)})
    assert cache.mode == "off" and "bypassed" in caplog.text
