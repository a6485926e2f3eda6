"""Fill the command line's embedding cache from the benchmark's own (``embed_fashion.py``), checked.

``multimodal-cat train --freeze-encoders`` and ``categorize --model`` cache each tower output
under the tower's weight digest and the product's content (rendered text, decoded pixels);
``embed_fashion.py`` cached the same DINOv2-small and MiniLM outputs under the encoder's name
and the file's bytes. Both are the same models on the same inputs, so a CLI benchmark need not
spend half an hour recomputing them: :func:`seed_cli_cache` copies every vector across under
the CLI's keys, after recomputing a random sample through the CLI's own towers and checking
that they agree (``max_abs_diff`` in the report). Titles longer than the benchmark's 64-token
limit are left for the CLI to encode.

Example:
    >>> report = seed_cli_cache(work / "cache", [work / "train.csv"])  # doctest: +SKIP
    >>> report["images_seeded"], report["max_abs_diff"] < 1e-3  # doctest: +SKIP
    (9583, True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.fashion_data import CACHE_DIR, IMAGE_KEY, TEXT_KEY
from multimodal_cat.encoders import EmbeddingCache, content_hash
from multimodal_cat.imaging import try_open_image
from multimodal_cat.modeling import LabelSpace, MultimodalCatModel, MultimodalCatProcessor
from multimodal_cat.predictors.checkpoint import TowerEmbedder, image_hash
from multimodal_cat.products import Product

SAMPLE = 24  # vectors of each kind recomputed through the CLI's towers


def _towers() -> tuple[TowerEmbedder, MultimodalCatProcessor]:
    model = MultimodalCatModel.from_encoders(
        "dinov2-small", "minilm", taxonomy=LabelSpace.from_paths(["a > b", "a > c"])
    )
    processor = MultimodalCatProcessor.from_encoders("dinov2-small", "minilm")
    return TowerEmbedder(model, processor), processor


def seed_cli_cache(root: Path, feeds: list[Path], source: Path = CACHE_DIR) -> dict:
    """Copy the benchmark cache's vectors of the feeds' titles and images into ``root``."""
    embedder, processor = _towers()
    frame = pd.concat([pd.read_csv(f) for f in feeds], ignore_index=True)
    titles = sorted({t.strip() for t in frame["title"].dropna().astype(str) if t.strip()})
    paths = sorted({p for p in frame["image"].dropna().astype(str) if p})
    tokens = processor.tokenizer(titles, truncation=False)["input_ids"]
    titles = [t for t, ids in zip(titles, tokens, strict=True) if len(ids) <= 64]
    bench = EmbeddingCache(source)
    text_vectors = bench.get_many(TEXT_KEY, [content_hash(t) for t in titles])
    file_hashes = {p: content_hash(Path(p).read_bytes()) for p in paths}
    image_vectors = bench.get_many(IMAGE_KEY, list(file_hashes.values()))
    bench.close()
    rendered = processor.texts([Product(title=t) for t in titles])
    text_out = {
        content_hash(r): text_vectors[content_hash(t)]
        for t, r in zip(titles, rendered, strict=True)
        if content_hash(t) in text_vectors
    }
    image_out = {}
    for path in paths:  # one decoded photo in memory at a time
        image = try_open_image(path)
        if image is not None and file_hashes[path] in image_vectors:
            image_out[image_hash(image.convert("RGB"))] = image_vectors[file_hashes[path]]
    diff = _check(embedder, rendered, text_out, paths, image_out)
    if diff > 1e-3:
        raise RuntimeError(f"benchmark and CLI vectors differ by {diff}; not seeding")
    cli = EmbeddingCache(root)
    cli.put_many(embedder.towers["text"].key, text_out)
    cli.put_many(embedder.towers["image"].key, image_out)
    cli.close()
    return {
        "titles_seeded": len(text_out),
        "titles_left_to_the_cli": len(frame["title"].dropna().unique()) - len(text_out),
        "images_seeded": len(image_out),
        "images_left_to_the_cli": len(paths) - len(image_out),
        "checked_per_kind": SAMPLE,
        "max_abs_diff": diff,
    }


def _check(embedder: TowerEmbedder, texts: list[str], text_out: dict, paths: list[str], image_out: dict) -> float:
    """Largest gap between seeded vectors and the CLI towers' own, on a random sample."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for kind, items, seeded in (("text", texts, text_out), ("image", paths, image_out)):
        pick = [items[i] for i in rng.choice(len(items), min(SAMPLE, len(items)), replace=False)]
        if kind == "image":
            opened = (try_open_image(path) for path in pick)
            pick = [image.convert("RGB") for image in opened if image is not None]
        hash_of = content_hash if kind == "text" else image_hash
        pick = [item for item in pick if hash_of(item) in seeded]
        own = embedder.towers[kind].encode(pick, batch_size=8)
        theirs = np.stack([seeded[hash_of(item)] for item in pick])
        worst = max(worst, float(np.abs(own - theirs).max()))
    return worst
