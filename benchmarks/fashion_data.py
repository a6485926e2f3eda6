"""Read the fashion data set and its cached embeddings (written by ``embed_fashion.py``).

Example:
    >>> from benchmarks.fashion_data import load_fashion_embeddings  # doctest: +SKIP
    >>> images = load_fashion_embeddings("images")  # doctest: +SKIP
    >>> images.ids.shape, images.vectors.shape, images.found.all()  # doctest: +SKIP
    ((9583,), (9583, 768), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from multimodal_cat.encoders import (
    EmbeddingCache,
    content_hash,
    image_encoder_key,
    text_encoder_key,
)

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data" / "fashion"
CACHE_DIR = REPO / "benchmarks" / "cache"

TEXT_ENCODER = ("minilm", "mean", 64)  # name, pooling, max_length
IMAGE_ENCODER = ("dinov2-small", "cls_mean")  # name, pooling
TEXT_KEY = text_encoder_key(*TEXT_ENCODER)  # 'text:minilm|pool=mean|max_length=64'
IMAGE_KEY = image_encoder_key(*IMAGE_ENCODER)  # 'image:dinov2-small|pool=cls_mean|fit=pad-trim'

Kind = Literal["titles", "brands", "images"]
KINDS: tuple[str, ...] = ("titles", "brands", "images")


@dataclass
class FashionItems:
    """What to embed for one kind: row ids, inputs (texts or image paths) and content hashes."""

    kind: str
    key: str
    ids: np.ndarray
    items: list
    hashes: list[str]


@dataclass
class FashionEmbeddings:
    """Cached embeddings for one kind, aligned with ``ids``.

    ``vectors`` rows are NaN where ``found`` is False (not cached yet, or no title).
    """

    kind: str
    key: str
    ids: np.ndarray
    vectors: np.ndarray
    found: np.ndarray


def brand_of(title: str) -> str:
    """The brand-only degraded title: the first word of the title."""
    return title.split()[0] if title.split() else ""


def _clean_title(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def fashion_items(kind: Kind, data_dir: str | Path | None = None) -> FashionItems:
    """List the rows to embed for ``kind``.

    * ``titles``: every row of ``styles.csv`` with a non-empty ``productDisplayName``.
    * ``brands``: first word of the title, rows of ``styles_with_images.csv``.
    * ``images``: image files of ``styles_with_images.csv`` (hash = sha256 of the file).
    """
    import pandas as pd

    data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
    if kind not in KINDS:
        raise ValueError(f"Expected kind in {KINDS}; got {kind!r}.")
    csv = "styles.csv" if kind == "titles" else "styles_with_images.csv"
    frame = pd.read_csv(data_dir / csv, on_bad_lines="skip")
    if kind == "images":
        paths = [data_dir / rel for rel in frame["image"]]
        hashes = [content_hash(path.read_bytes()) for path in paths]
        return FashionItems(kind, IMAGE_KEY, frame["id"].to_numpy(np.int64), paths, hashes)
    titles = [_clean_title(value) for value in frame["productDisplayName"]]
    keep = [i for i, title in enumerate(titles) if title is not None]
    texts = [titles[i] for i in keep]
    if kind == "brands":
        texts = [brand_of(text) for text in texts]
    ids = frame["id"].to_numpy(np.int64)[keep]
    return FashionItems(kind, TEXT_KEY, ids, texts, [content_hash(text) for text in texts])


def load_fashion_embeddings(
    kind: Kind,
    ids: np.ndarray | list[int] | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    normalize: bool = False,
) -> FashionEmbeddings:
    """Read cached embeddings of ``kind`` ("titles", "brands" or "images").

    Args:
        kind: which embeddings.
        ids: product ids to return, in this order (default: every row of the CSV).
        data_dir: the fashion folder (default ``../shared/data/fashion``).
        cache_dir: the cache root used by ``embed_fashion.py`` (default ``benchmarks/cache``).
        normalize: L2-normalize the rows (the cache holds raw pooled vectors).

    Returns:
        FashionEmbeddings with ``vectors`` float32 (len(ids), 384 or 768).
    """
    table = fashion_items(kind, data_dir)
    cache = EmbeddingCache(cache_dir if cache_dir is not None else CACHE_DIR)
    cached = cache.get_many(table.key, table.hashes)
    cache.close()
    dim = 768 if kind == "images" else 384
    by_id = {int(i): h for i, h in zip(table.ids, table.hashes, strict=True)}
    wanted = np.asarray(table.ids if ids is None else ids, dtype=np.int64)
    vectors = np.full((len(wanted), dim), np.nan, dtype=np.float32)
    found = np.zeros(len(wanted), dtype=bool)
    for row, product_id in enumerate(wanted):
        vector = cached.get(by_id.get(int(product_id), ""))
        if vector is not None:
            vectors[row], found[row] = vector, True
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return FashionEmbeddings(kind, table.key, wanted, vectors, found)
