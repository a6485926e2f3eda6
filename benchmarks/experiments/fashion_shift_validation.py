"""Does the framing hold up on shifted photos? Checked on validation photos, never the test split.

The CLI benchmark (``fashion_cli_inputs.py``) scores its checkpoint on a geometry-shifted copy
of the *test* photos (letterboxed with black bands to 3:4 / 4:3, cropped by 10%, JPEG quality
60). Choices about the framing are made here instead, on the same shift applied to imaged
*validation* products of the training feed (``id % 10 == 3``, a deterministic sample): image-only
leaf accuracy of the CLI checkpoint on the photos as shared and shifted, with the framing as
it is (bands trimmed, then padded) and with band trimming switched off. These validation
products are rows of the checkpoint's training feed (its own eval split is a random tenth), so
the absolute accuracies are optimistic; what this measures is the gap between the framings and
between shared and shifted photos.

Usage (from the repo root, after ``fashion_cli_inputs.py`` trained its checkpoint)::

    python -m benchmarks.experiments.fashion_shift_validation --limit 400
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from benchmarks.fashion_cli_inputs import LEVELS, WORK, shift_photo
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results
from multimodal_cat import framing
from multimodal_cat.imaging import open_image
from multimodal_cat.predictors.checkpoint import ModelPredictor
from multimodal_cat.products import Product


def accuracy(predictor: ModelPredictor, paths: list[str], truth: list[str]) -> float:
    products = [Product(image=open_image(p)) for p in paths]
    got = []
    for start in range(0, len(products), 64):
        got += [p.category_path for p in predictor.predict(products[start : start + 64])]
    return round(float(np.mean([g == t for g, t in zip(got, truth, strict=True)])), 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--limit", type=int, default=400, help="validation photos")
    args = parser.parse_args(argv)
    train = pd.read_csv(args.work / "train.csv")
    val = train[(train["id"] % 10 == 3) & train["image"].fillna("").ne("")]
    val = val.sort_values("id").iloc[:: max(1, len(val) // args.limit)].iloc[: args.limit]
    truth = [" > ".join(str(r[c]).strip() for c in LEVELS) for _, r in val.iterrows()]
    shifted_dir = Path(tempfile.mkdtemp())
    shifted = []
    for product_id, path in zip(val["id"], val["image"], strict=True):
        target = shifted_dir / f"{product_id}.jpg"
        shift_photo(path, target, int(product_id))
        shifted.append(str(target))
    predictor = ModelPredictor.from_pretrained(str(args.work / "model"), cache=False)
    figures = {
        "as_shared": accuracy(predictor, list(val["image"]), truth),
        "shifted_trim_and_pad": accuracy(predictor, shifted, truth),
    }
    with mock.patch.object(framing, "trim_bars", lambda image: image):
        figures["shifted_pad_without_trim"] = accuracy(predictor, shifted, truth)
    result = {
        "environment": environment("benchmarks.experiments.fashion_shift_validation"),
        "validation_photos": len(val),
        "image_only_leaf_accuracy": figures,
    }
    text = "\n".join(
        [
            "# Framing on shifted validation photos (image only, CLI checkpoint)",
            "",
            f"Made by {made_by(result['environment'])}. {len(val)} imaged validation products "
            "(`id % 10 == 3` of the training feed).",
            "",
            "| photos | framing | leaf accuracy |",
            "|---|---|---|",
            f"| as shared (square) | any (square photos are left alone) | {figures['as_shared']} |",
            f"| shifted | dark bands trimmed, then padded (default) | {figures['shifted_trim_and_pad']} |",
            f"| shifted | padded, bands kept | {figures['shifted_pad_without_trim']} |",
            "",
        ]
    )
    write_results(RESULTS / "fashion_shift_validation", result, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
