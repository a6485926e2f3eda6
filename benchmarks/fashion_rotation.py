"""Sideways photos: answers of the future-split checkpoint on photos turned by 90 and 270
degrees against the same photos upright (issue 27).

Takes ``--n`` imaged test products of the future split (seed 0) from
``fashion_future_cli.py``'s work folder, writes each photo turned by 90 and by 270 degrees, and
runs ``categorize --model`` on the photo alone (upright, 90, 270) and on title + photo (upright,
90). Reports leaf accuracy, the mean confidence of wrong answers, the share the checkpoint's
orientation probe read turned back (a warning on the answer), and the share of answers at or
above the stored 98% threshold of their input kind (the ones that would be auto-accepted).

Writes the key ``rotated`` of ``benchmarks/results/fashion_model.json``.

Usage (after ``fashion_future_cli.py``)::

    python -m benchmarks.fashion_rotation --n 150
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.fashion_cli_inputs import categorize, merge_into, read_rows
from benchmarks.fashion_future_cli import truth
from benchmarks.fashion_model import environment, made_by


def figures(rows: list[dict], true: pd.DataFrame, threshold: float | None) -> dict:
    hit = np.array([r["category_path"] == true.loc[int(r["id"]), "path"] for r in rows])
    confidence = np.array([float(r["confidence"]) for r in rows])
    out = {
        "rows": len(rows),
        "leaf_accuracy": round(float(hit.mean()), 4),
        "mean_confidence_wrong": round(float(confidence[~hit].mean()), 4) if (~hit).any() else None,
        "max_confidence_wrong": round(float(confidence[~hit].max()), 4) if (~hit).any() else None,
    }
    turned = [any("turned by" in w for w in r.get("warnings") or []) for r in rows]
    out["read_turned_back"] = round(float(np.mean(turned)), 4)  # the orientation probe's doing
    if threshold is not None:
        accepted = confidence >= threshold
        out["auto_accepted_at_0.98"] = round(float(accepted.mean()), 4)
        out["auto_accepted_wrong"] = int((accepted & ~hit).sum())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fashion_future_cli"))
    parser.add_argument("--n", type=int, default=150)
    args = parser.parse_args(argv)
    work, model = args.work, args.work / "model"
    os.environ["MULTIMODAL_CAT_CACHE"] = str(work / "cache")
    env = environment("benchmarks.fashion_rotation", n=args.n)
    test = pd.read_csv(work / "test.csv")
    sample = test.sample(n=min(args.n, len(test)), random_state=0)
    rotated_dir = work / "rotated"
    rotated_dir.mkdir(exist_ok=True)
    rotated = []
    rotated_270 = []
    for product_id, path in zip(sample["id"], sample["image"], strict=True):
        for degrees, into in ((90, rotated), (270, rotated_270)):
            target = rotated_dir / f"{product_id}_{degrees}.jpg"
            if not target.exists():
                Image.open(path).convert("RGB").rotate(degrees, expand=True).save(target, quality=95)
            into.append(str(target))
    true = truth(work)
    config = json.loads((model / "config.json").read_text())
    by_input = config.get("confidence_thresholds_by_input", {})
    threshold = (by_input.get("image") or {}).get("0.98")
    title_threshold = (by_input.get("text+image") or {}).get("0.98")
    result = {"environment": env}
    result["orientation_probe"] = (config.get("orientation_probe") or {}).get("figures")
    runs = (("upright", list(sample["image"]), False), ("rotated_90", rotated, False),
            ("rotated_270", rotated_270, False), ("title_upright", list(sample["image"]), True),
            ("title_rotated_90", rotated, True))
    for name, images, with_title in runs:
        feed = work / f"rotation_{name}.csv"
        titles = sample["title"] if with_title else ""
        pd.DataFrame({"id": sample["id"], "title": titles, "image": images}).to_csv(feed, index=False)
        out = work / f"out_rotation_{name}.jsonl"
        result[f"categorize_seconds_{name}"] = categorize(model, feed, out, work / "log.txt")
        kind_threshold = title_threshold if with_title else threshold
        result[name] = figures(read_rows(out), true, kind_threshold)
    result["made_by"] = "benchmarks/fashion_rotation.py, " + made_by(env)
    print(json.dumps(result, indent=2))
    merge_into("fashion_model", {"rotated": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
