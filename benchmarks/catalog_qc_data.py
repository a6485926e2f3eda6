"""Fashion data and cached vectors for ``catalog_qc.py``.

Rows of ``styles_with_images.csv`` are shuffled once (seed 0), so the first N rows are a random
sample; titles are MiniLM (mean pooling, 64 tokens), photos DINOv2-small (``cls_mean``), both
through :class:`multimodal_cat.catalog.embed.CatalogEncoders` and the embedding cache in
``benchmarks/cache_catalog`` (an interrupted run resumes).

Usage (from the repo root; background, low priority)::

    nohup nice -n 10 python benchmarks/catalog_qc_data.py --images 4000 &
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fashion"
CACHE = REPO / "benchmarks" / "cache_catalog"
SEED = 0


def fashion_frame(data: Path = DATA) -> pd.DataFrame:
    """styles_with_images.csv shuffled (seed 0), with ``path`` and ``category`` columns."""
    frame = pd.read_csv(data / "styles_with_images.csv", on_bad_lines="skip")
    frame = frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    frame["path"] = [str(data / rel) for rel in frame["image"]]
    frame["category"] = (
        frame["masterCategory"] + " > " + frame["subCategory"] + " > " + frame["articleType"]
    )
    frame["productDisplayName"] = frame["productDisplayName"].fillna("").astype(str)
    return frame


ABT_BUY = REPO.parent / "shared" / "data" / "dedup" / "abt-buy"
MWPD = REPO.parent / "shared" / "data" / "mwpd"


def abt_buy_frame() -> pd.DataFrame:
    """Both shops' offers as one catalog: ``uid`` (``a<id>`` / ``b<id>``), ``shop``, ``name``."""
    frames = []
    for table, shop in (("tableA.csv", "abt"), ("tableB.csv", "buy")):
        frame = pd.read_csv(ABT_BUY / table)
        frame["uid"] = [f"{shop[0]}{i}" for i in frame["id"]]
        frame["shop"] = shop
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["name"] = out["name"].fillna("").astype(str)
    return out


def mwpd_frame() -> pd.DataFrame:
    """MWPD offers (validation rows first), title as text."""
    frame = pd.read_csv(MWPD / "products.csv")
    frame["title"] = frame["title"].fillna("").astype(str)
    return frame.sort_values("split", ascending=False, kind="stable").reset_index(drop=True)


def encoders(text: bool = True, image: bool = True):
    """The benchmark's CatalogEncoders (MiniLM, DINOv2-small) on the benchmark cache."""
    from multimodal_cat.catalog.embed import CatalogEncoders
    from multimodal_cat.encoders.cache import EmbeddingCache

    return CatalogEncoders.from_names(
        "minilm" if text else None,
        "dinov2-small" if image else None,
        cache=EmbeddingCache(CACHE),
    )


def title_vectors(frame: pd.DataFrame) -> np.ndarray:
    return encoders(image=False).encode_texts(list(frame["productDisplayName"]))


def image_vectors(paths: list[str], chunk: int = 64) -> np.ndarray:
    """Unit DINOv2 vectors of image files (decoded with the library's limits)."""
    from multimodal_cat.imaging import open_image

    enc = encoders(text=False)
    out = []
    for start in range(0, len(paths), chunk):
        images = [open_image(Path(p)) for p in paths[start : start + chunk]]
        out.append(enc.encode_images(images))
        print(f"images {start + len(images)}/{len(paths)}", flush=True)
    return np.vstack(out) if out else np.zeros((0, 768), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=0, help="photos of the first N shuffled rows")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    text = encoders(image=False)
    print("abt-buy", text.encode_texts(list(abt_buy_frame()["name"])).shape, flush=True)
    frame = fashion_frame()
    print("fashion titles", title_vectors(frame).shape, flush=True)
    print("mwpd", text.encode_texts(list(mwpd_frame()["title"])).shape, flush=True)
    if args.images:
        image_vectors(list(frame["path"][: args.images]))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
