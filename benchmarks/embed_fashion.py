"""Precompute and cache the fashion embeddings the model benchmark needs.

* MiniLM (mean pooling, max_length 64) of every title of ``styles.csv`` (42k);
* MiniLM of the brand-only titles (first word) of ``styles_with_images.csv``;
* DINOv2-small (pooling ``cls_mean``, 768-d) of the 9,583 images of ``styles_with_images.csv``.

Vectors go into the library's :class:`EmbeddingCache` under ``benchmarks/cache/``
(``--cache`` to change); an interrupted run resumes where it stopped. Read them back
with ``fashion_data.load_fashion_embeddings(kind)``.

Usage (from the repo root)::

    nice -n 5 python benchmarks/embed_fashion.py                # everything
    python benchmarks/embed_fashion.py --only titles --limit 500
    python benchmarks/embed_fashion.py --compare-precision 64   # fp32 vs bf16 speed/accuracy
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fashion_data import (  # noqa: E402
    CACHE_DIR,
    DATA_DIR,
    IMAGE_ENCODER,
    KINDS,
    REPO,
    TEXT_ENCODER,
    fashion_items,
)

from multimodal_cat.encoders import (  # noqa: E402
    EmbeddingCache,
    ImageEncoder,
    TextEncoder,
    encode_cached,
)

RESULTS = REPO / "benchmarks" / "results" / "embed_fashion.json"


def matmul_gflops(size: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul throughput (GFLOP/s) on this machine now: the compute ceiling."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def embed_kind(kind: str, args: argparse.Namespace, cache: EmbeddingCache, encoders: dict) -> dict:
    """Embed one kind, encoding only cache misses; return a summary record."""
    table = fashion_items(kind, args.data)
    items, hashes = table.items[: args.limit], table.hashes[: args.limit]
    modality = "image" if kind == "images" else "text"
    if modality not in encoders:  # load each encoder once
        load = ImageEncoder.from_name if modality == "image" else TextEncoder.from_name
        encoders[modality] = load(*(IMAGE_ENCODER if modality == "image" else TEXT_ENCODER))
    encoder = encoders[modality]
    batch = args.image_batch if modality == "image" else args.text_batch
    unique = len(set(hashes))
    before = len(cache.get_many(encoder.key, hashes))
    start = time.perf_counter()
    vectors = encode_cached(
        encoder,
        items,
        hashes,
        cache,
        batch_size=batch,
        chunk_size=256,
        bf16=args.bf16,
        progress=True,
    )
    seconds = time.perf_counter() - start
    encoded = unique - before
    record = {
        "kind": kind,
        "key": encoder.key + ("|bf16" if args.bf16 else ""),
        "rows": len(items),
        "unique": unique,
        "cached_before": before,
        "encoded": encoded,
        "seconds": round(seconds, 1),
        "per_second": round(encoded / seconds, 1) if encoded and seconds > 0 else None,
        "dim": int(vectors.shape[1]),
        "finite": bool(np.isfinite(vectors).all()),
    }
    print(f"RESULT {json.dumps(record)}", flush=True)
    return record


def compare_precision(args: argparse.Namespace) -> dict:
    """Images/s in fp32 and bf16 (batch 32) and how far bf16 embeddings drift from fp32."""
    table = fashion_items("images", args.data)
    paths = table.items[: args.compare_precision]
    encoder = ImageEncoder.from_name(*IMAGE_ENCODER)
    encoder.encode(paths[:2])  # warm-up
    record: dict[str, object] = {"images": len(paths), "batch": args.image_batch}
    vectors = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        start = time.perf_counter()
        vectors[name] = encoder.encode(paths, batch_size=args.image_batch, bf16=bf16)
        record[f"{name}_images_per_s"] = round(len(paths) / (time.perf_counter() - start), 2)
    a, b = vectors["fp32"], vectors["bf16"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    record.update(
        max_abs_diff=float(np.abs(a - b).max()),
        max_abs_value=float(np.abs(a).max()),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        matmul_gflops_fp32=round(matmul_gflops(), 1),
        matmul_gflops_bf16=round(matmul_gflops(dtype=torch.bfloat16), 1),
    )
    gflop_per_image = 11.6  # ViT-S/14 at 224
    for name in ("fp32", "bf16"):
        ceiling = record[f"matmul_gflops_{name}"] / gflop_per_image
        record[f"{name}_ratio_to_ceiling"] = round(record[f"{name}_images_per_s"] / ceiling, 2)
    texts = fashion_items("titles", args.data).items[: 20 * args.text_batch]
    text_encoder = TextEncoder.from_name(*TEXT_ENCODER)
    start = time.perf_counter()
    text_encoder.encode(texts, batch_size=args.text_batch)
    record["text_titles_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    print(f"RESULT {json.dumps(record)}", flush=True)
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="fashion data folder")
    parser.add_argument("--cache", type=Path, default=CACHE_DIR, help="embedding cache root")
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--limit", type=int, default=None, help="first N rows of each kind")
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (cached apart)")
    parser.add_argument(
        "--compare-precision",
        type=int,
        default=0,
        metavar="N",
        help="only measure fp32 vs bf16 on N images (and text speed); cache nothing",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"torch threads={torch.get_num_threads()} data={args.data} cache={args.cache}", flush=True
    )
    if args.compare_precision:
        records = [compare_precision(args)]
    else:
        cache = EmbeddingCache(args.cache)
        encoders: dict = {}
        records = [embed_kind(kind, args, cache, encoders) for kind in args.only]
        cache.close()
    results = (
        RESULTS.with_name("embed_fashion_precision.json") if args.compare_precision else RESULTS
    )
    results.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results.write_text(json.dumps({"finished": stamp, "records": records}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
