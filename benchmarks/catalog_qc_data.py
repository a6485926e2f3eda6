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
    parser.add_argument("--images", type=int, default=4000, help="first N shuffled rows")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    frame = fashion_frame()
    print("titles", title_vectors(frame).shape, flush=True)
    image_vectors(list(frame["path"][: args.images]))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
