"""Fashion benchmark data: labels, tags, splits and cached embeddings in one table.

Split protocol (the same in every fashion benchmark): test = rows of ``styles_with_images.csv``
with ``id % 5 == 0``; validation = every other labelled row with ``id % 10 == 3`` (imaged and
text-only rows alike); train = all remaining labelled rows of ``styles.csv`` (about 32k of
them have no image).

Example:
    >>> from benchmarks.fashion_model_data import load_table  # doctest: +SKIP
    >>> table = load_table()  # doctest: +SKIP
    >>> int((table.split == "test").sum())  # doctest: +SKIP
    1912
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.fashion_data import DATA_DIR, brand_of, load_fashion_embeddings
from multimodal_cat.modeling import LabelSpace, TagGroup
from multimodal_cat.training.metrics import IGNORE_INDEX

LEVELS = ("masterCategory", "subCategory", "articleType")
TAG_COLUMNS = ("gender", "baseColour", "season", "usage")


@dataclass
class FashionTable:
    """Every labelled product with its leaf node, tags, split and cached embeddings."""

    ids: np.ndarray  # (n,) product ids
    titles: list[str]  # "" where the title is missing
    labels: np.ndarray  # (n,) leaf node index in ``space``
    tags: np.ndarray  # (n, n_tag_values) 0/1, -100 where the group is unknown
    split: np.ndarray  # (n,) "train" / "val" / "test"
    text: np.ndarray  # (n, 384) title embeddings (zeros where missing)
    text_mask: np.ndarray
    brand: np.ndarray  # (n, 384) brand-only title embeddings (imaged rows)
    brand_mask: np.ndarray
    image: np.ndarray  # (n, 768) image embeddings (zeros where no image)
    image_mask: np.ndarray
    space: LabelSpace
    groups: list[TagGroup]
    load_seconds: dict[str, float] = field(default_factory=dict)
    cache_found: dict[str, list[int]] = field(default_factory=dict)  # kind -> [found, wanted]

    def rows(self, split: str, imaged: bool | None = None) -> np.ndarray:
        """Row indices of ``split`` (optionally only imaged / only text-only rows)."""
        keep = self.split == split
        if imaged is not None:
            keep &= self.image_mask == imaged
        return np.flatnonzero(keep)

    @property
    def brands(self) -> list[str]:
        """The brand-only degraded titles (first word)."""
        return [brand_of(t) for t in self.titles]


def split_of(ids: np.ndarray, imaged: np.ndarray) -> np.ndarray:
    """Deterministic id rule: imaged ``id % 5 == 0`` is test, other ``id % 10 == 3`` is val."""
    split = np.full(len(ids), "train", dtype=object)
    split[(ids % 10 == 3)] = "val"
    split[imaged & (ids % 5 == 0)] = "test"
    return split


def _tag_matrix(frame, groups: list[TagGroup]) -> np.ndarray:
    blocks = []
    for group in groups:
        lookup = {v: i for i, v in enumerate(group.values)}
        block = np.full((len(frame), len(group.values)), float(IGNORE_INDEX), dtype=np.float32)
        for row, value in enumerate(frame[group.attribute].tolist()):
            if isinstance(value, str) and value in lookup:
                block[row] = 0.0
                block[row, lookup[value]] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def _embeddings(kind: str, ids: np.ndarray, dim: int, table: FashionTable | None = None):
    start = time.perf_counter()
    emb = load_fashion_embeddings(kind, ids, normalize=True)
    vectors = np.where(emb.found[:, None], np.nan_to_num(emb.vectors), 0.0).astype(np.float32)
    return vectors, emb.found.copy(), time.perf_counter() - start


def load_table(limit: int | None = None) -> FashionTable:
    """Read ``styles.csv``, the imaged subset and the three embedding caches.

    Args:
        limit: Keep only every ``k``-th product so that about ``limit`` rows remain (``--quick``).
    """
    import pandas as pd

    frame = pd.read_csv(DATA_DIR / "styles.csv", on_bad_lines="skip")
    frame = frame.dropna(subset=list(LEVELS)).reset_index(drop=True)
    if limit is not None and limit < len(frame):
        frame = frame.iloc[:: max(1, len(frame) // limit)].reset_index(drop=True)
    imaged_ids = set(pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")["id"])
    ids = frame["id"].to_numpy(np.int64)
    paths = [" > ".join(str(r[c]).strip() for c in LEVELS) for _, r in frame.iterrows()]
    full = pd.read_csv(DATA_DIR / "styles.csv", on_bad_lines="skip").dropna(subset=list(LEVELS))
    tree_paths = sorted({" > ".join(str(r[c]).strip() for c in LEVELS) for _, r in full.iterrows()})
    space = LabelSpace.from_paths(tree_paths, name="myntra-fashion")
    groups = [
        TagGroup(col, tuple(sorted(full[col].dropna().astype(str).unique()))) for col in TAG_COLUMNS
    ]
    titles = [t.strip() if isinstance(t, str) else "" for t in frame["productDisplayName"]]
    text, text_mask, t_text = _embeddings("titles", ids, 384)
    brand, brand_mask, t_brand = _embeddings("brands", ids, 384)
    image, image_mask, t_image = _embeddings("images", ids, 768)
    imaged = np.array([i in imaged_ids for i in ids])
    return FashionTable(
        ids=ids,
        titles=titles,
        labels=np.array([space.node_index(p) for p in paths], dtype=np.int64),
        tags=_tag_matrix(frame, groups),
        split=split_of(ids, imaged),
        text=text,
        text_mask=text_mask,
        brand=brand,
        brand_mask=brand_mask,
        image=image,
        image_mask=image_mask & imaged,
        space=space,
        groups=groups,
        load_seconds={"titles": t_text, "brands": t_brand, "images": t_image},
        cache_found={
            "titles": [int(text_mask.sum()), int(sum(bool(t) for t in titles))],
            "brands": [int(brand_mask.sum()), int(imaged.sum())],
            "images": [int(image_mask.sum()), int(imaged.sum())],
        },
    )
