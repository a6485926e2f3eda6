"""Thresholds per input kind refitted on reviewed newer products (issue 27).

The future-split checkpoint of ``fashion_future_cli.py`` stores thresholds measured on a random
share of its training feed (products of 2011 and earlier); on the 2012+ products they do not
hold. Here a team reviews ``--reviews`` of the 2012+ products (seed 0), as they came in each of
the three input kinds (title + photo, title, photo), and ``multimodal-cat calibrate --model``
refits the thresholds per kind from those reviews. Precision and share auto-accepted are
measured on the other 2012+ products, from the ``categorize --model`` outputs that
``fashion_future_cli.py`` wrote (the refit changes thresholds, not confidences).

Writes the key ``thresholds_reviewed`` of ``benchmarks/results/fashion_model.json`` and
``benchmarks/results/fashion_reviewed_thresholds.{json,md}``.

Usage (after ``fashion_future_cli.py``)::

    python -m benchmarks.fashion_reviewed_thresholds --reviews 300
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.fashion_cli_inputs import merge_into, read_rows
from benchmarks.fashion_future_cli import KIND, TARGETS, truth
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results

KINDS = ("title_image", "title", "image")


def reviewed_feed(work: Path, ids: set[int], true: pd.DataFrame) -> Path:
    """The reviewed products in each input kind, with the category a reviewer gave."""
    frames = []
    for which in KINDS:
        frame = pd.read_csv(work / f"test_{which}.csv").fillna("")
        frame = frame[frame["id"].isin(ids)].copy()
        frame["category"] = [true.loc[int(i), "path"] for i in frame["id"]]
        frames.append(frame)
    path = work / "reviewed.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def held_out(work: Path, which: str, ids: set[int], true: pd.DataFrame, stored: dict) -> dict:
    rows = [r for r in read_rows(work / f"out_{which}.jsonl") if int(r["id"]) not in ids]
    hit = np.array([r["category_path"] == true.loc[int(r["id"]), "path"] for r in rows])
    confidence = np.array([float(r["confidence"]) for r in rows])
    out = {"rows": len(rows)}
    for target in TARGETS:
        threshold = stored.get(target)
        accepted = confidence >= threshold if threshold is not None else np.zeros(len(rows), bool)
        out[target] = {
            "threshold": None if threshold is None else round(float(threshold), 6),
            "share": round(float(accepted.mean()), 4),
            "precision": round(float(hit[accepted].mean()), 4) if accepted.any() else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fashion_future_cli"))
    parser.add_argument("--reviews", type=int, default=300)
    args = parser.parse_args(argv)
    work = args.work
    os.environ["MULTIMODAL_CAT_CACHE"] = str(work / "cache")
    env = environment("benchmarks.fashion_reviewed_thresholds", reviews=args.reviews)
    true = truth(work)
    ids = set(np.random.default_rng(0).permutation(true.index.to_numpy())[: args.reviews].tolist())
    model = work / "model_reviewed"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(work / "model", model, ignore=shutil.ignore_patterns("checkpoint-*"))
    before = json.loads((model / "config.json").read_text())["confidence_thresholds_by_input"]
    command = [sys.executable, "-m", "multimodal_cat", "calibrate", str(reviewed_feed(work, ids, true)),
               "--model", str(model)] + [a for t in TARGETS for a in ("--target-precision", t)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    after = json.loads((model / "config.json").read_text())["confidence_thresholds_by_input"]
    result = {"environment": env, "reviewed_products": args.reviews, "command": " ".join(command[1:]),
              "calibrate_output": [line for line in done.stderr.splitlines() if line.startswith("[")]}
    for which in KINDS:
        kind = KIND[which]
        result[which] = {"before": held_out(work, which, ids, true, before.get(kind, {})),
                         "after": held_out(work, which, ids, true, after.get(kind, {}))}
    result["made_by"] = "benchmarks/fashion_reviewed_thresholds.py, " + made_by(env)
    lines = ["# Thresholds per input kind refitted on reviewed newer products (issue 27)", "",
             f"Made by {result['made_by']}. {args.reviews} of the 2012+ products reviewed in each "
             "input kind; precision measured on the other 2012+ products.", "",
             "| input | target | threshold before / after | precision before / after | accepted before / after |",
             "|---|---|---|---|---|"]
    for which in KINDS:
        for target in TARGETS:
            b, a = result[which]["before"][target], result[which]["after"][target]
            lines.append(f"| {which} | {target} | {b['threshold']} / {a['threshold']} | {b['precision']} / "
                         f"{a['precision']} | {b['share']} / {a['share']} |")
    lines += ["", "`calibrate` said:", "", *[f"    {line}" for line in result["calibrate_output"]]]
    write_results(RESULTS / "fashion_reviewed_thresholds", result, "\n".join(lines) + "\n")
    merge_into("fashion_model", {"thresholds_reviewed": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
