"""Flip test-time augmentation for the image pathway, measured on fashion validation photos.

Issue 16 lists flip TTA among the ways to a stronger image pathway. This benchmark embeds the
mirror image of each imaged *validation* photo (``id % 10 == 3``, see
``benchmarks/fashion_model_data.py``) with the same encoder and framing as the cache
(``dinov2-small``, CLS + mean pooling, pad-trim), then scores an image-only logistic
regression trained on the cached training photos three ways: the photo, its mirror, and both
(embeddings averaged, or probabilities averaged). The test photos are not read.

Usage (from the repo root)::

    nice -n 5 python -m benchmarks.experiments.fashion_flip_tta     # results/fashion_flip_tta.{json,md}
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.fashion_data import DATA_DIR, IMAGE_ENCODER
from benchmarks.fashion_model import environment, made_by, output_stem, write_results
from benchmarks.fashion_model_data import load_table
from multimodal_cat.encoders import ImageEncoder

C = 10.0  # the probe's regularisation


def mirrored(ids: np.ndarray) -> list:
    """The mirror image of each product's photo."""
    import pandas as pd
    from PIL import Image, ImageOps

    frame = pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")
    path = {int(i): DATA_DIR / p for i, p in zip(frame["id"], frame["image"], strict=True)}
    return [ImageOps.mirror(Image.open(path[int(i)]).convert("RGB")) for i in ids]


def markdown(result: dict) -> str:
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in result["accuracy"].items())
    return (
        "# Flip test-time augmentation, image only (fashion validation photos)\n\n"
        f"{made_by(result['environment'])}. Logistic regression (C {C}) on {result['train']} "
        f"cached training photos, scored on {result['val']} validation photos; articleType "
        "accuracy from the image alone.\n\n"
        f"| input | accuracy |\n|---|---|\n{rows}\n\n"
        f"Mirror costs one more encoder pass per photo ({result['encode_seconds']:.0f} s for "
        f"{result['val']} photos here).\n"
    )


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="output stem (default results/fashion_flip_tta)")
    args = parser.parse_args(argv)
    table = load_table()
    train, val = table.rows("train", imaged=True), table.rows("val", imaged=True)
    encoder = ImageEncoder.from_name(*IMAGE_ENCODER)
    start = time.perf_counter()
    flipped = encoder.encode(mirrored(table.ids[val]), normalize=True, progress=True)
    encode_seconds = time.perf_counter() - start
    probe = LogisticRegression(C=C, max_iter=500).fit(table.image[train], table.labels[train])
    truth = table.labels[val]
    photo = table.image[val]
    both = photo + flipped
    both /= np.linalg.norm(both, axis=1, keepdims=True)
    proba = probe.predict_proba(photo) + probe.predict_proba(flipped)
    accuracy = {
        "photo": float((probe.predict(photo) == truth).mean()),
        "mirror": float((probe.predict(flipped) == truth).mean()),
        "mean_embedding": float((probe.predict(both) == truth).mean()),
        "mean_probability": float((probe.classes_[proba.argmax(1)] == truth).mean()),
    }
    result = {
        "environment": environment("benchmarks.experiments.fashion_flip_tta", encoder="dinov2-small", seed=0),
        "train": int(len(train)),
        "val": int(len(val)),
        "accuracy": {k: round(v, 4) for k, v in accuracy.items()},
        "encode_seconds": round(encode_seconds, 1),
    }
    write_results(output_stem("fashion_flip_tta", args.out, False), result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
