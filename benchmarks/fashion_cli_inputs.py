"""One checkpoint trained with the README's ``train`` command, scored through ``categorize --model``
with four inputs, on the fashion test photos as shared and on a geometry-shifted copy of them.

Steps (all through the command line, as a catalog team runs it):

1. Feeds: ``train.csv`` = every labelled product that is not a test product (imaged or not);
   the test split = the imaged products with ``id % 5 == 0`` (the split of every fashion
   benchmark). Nothing of the test split reaches training, calibration or the tag gate: the
   command holds out its own ``--eval-split 0.1`` of the training feed for those.
2. ``multimodal-cat train`` with the README's flags and nothing else (the frozen-head recipe's
   defaults: its input views, the tag gate, calibration).
3. Four test feeds: title + image, title only, image only, brand word (the title's first word) +
   image; and the same four with the *shifted* photos: each test photo letterboxed with black bars
   to 3:4 (odd ids) or 4:3 (even ids), cropped by 10% (a window of 90% of each side at an
   id-seeded offset) and re-encoded at JPEG quality 60. ``categorize --model`` runs on each.
4. Leaf accuracy and macro-F1 per input, each tag's accuracy (with the image against the title
   alone), the confidence's calibration error, and the share auto-accepted at the checkpoint's
   stored 98% / 99% precision thresholds with the precision measured on the accepted test rows;
   the reliability diagram of title + image (raw scores against the stored temperature).

The figures go to ``benchmarks/results/fashion_cli_inputs.{json,md}`` and under the keys
``cli_checkpoint.<input>`` and ``shifted.<input>`` into ``benchmarks/results/fashion_model.json``.

Usage (from the repo root; about 25 minutes on 2 cores with a cold cache, most of it DINOv2)::

    python -m benchmarks.fashion_cli_inputs
    python -m benchmarks.fashion_cli_inputs --limit 2000 --work /tmp/cli_inputs   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.fashion_cli import TAGS, write_feeds
from benchmarks.fashion_data import REPO
from benchmarks.fashion_model import RESULTS, earlier_results, environment, made_by, write_results
from multimodal_cat.calibration import expected_calibration_error, reliability_diagram
from multimodal_cat.training.metrics import macro_f1

INPUTS = ("title_image", "title", "image", "brand_image")
LEVELS = ("masterCategory", "subCategory", "articleType")
WORK = REPO / "benchmarks" / "cache" / "cli_inputs"
PRECISIONS = ("0.98", "0.99")
RELIABILITY = "fashion_cli_inputs_reliability.png"


def run_train(command: list[str], log: Path) -> dict:
    """Run a ``train`` command (stderr into ``log``); its printed metrics and wall seconds."""
    start = time.perf_counter()
    with log.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"train failed; see {log}")
    metrics = json.loads(done.stdout[done.stdout.rindex("{\n") :])
    return {"wall_seconds": round(time.perf_counter() - start, 1), **metrics}


def train_command(work: Path, seed: int) -> list[str]:
    """The README's ``train`` command on this split (plus where to write and the seed)."""
    command = [sys.executable, "-m", "multimodal_cat", "train", "--feed", str(work / "train.csv")]
    command += ["--category-column", ",".join(LEVELS)]
    for tag in TAGS:
        command += ["--tag-column", tag]
    command += ["--text-encoder", "minilm", "--vision-encoder", "dinov2-small"]
    command += ["--freeze-encoders", "--eval-split", "0.1", "--output_dir", str(work / "model")]
    return command + ["--report_to", "none", "--seed", str(seed), "--disable_tqdm", "true"]


def shift_photo(source: str, target: Path, product_id: int) -> None:
    """Letterbox to 3:4 or 4:3 with black bars, crop 10%, save as JPEG quality 60."""
    image = Image.open(source).convert("RGB")
    width, height = image.size
    tall = product_id % 2 == 1
    canvas_size = (width, round(width * 4 / 3)) if tall else (round(height * 4 / 3), height)
    canvas = Image.new("RGB", canvas_size, (0, 0, 0))
    canvas.paste(image, ((canvas_size[0] - width) // 2, (canvas_size[1] - height) // 2))
    rng = np.random.default_rng(product_id)
    keep_w, keep_h = round(canvas_size[0] * 0.9), round(canvas_size[1] * 0.9)
    left = int(rng.integers(0, canvas_size[0] - keep_w + 1))
    top = int(rng.integers(0, canvas_size[1] - keep_h + 1))
    canvas.crop((left, top, left + keep_w, top + keep_h)).save(target, "JPEG", quality=60)


def input_feeds(work: Path) -> dict[str, Path]:
    """The four test feeds per photo set (``test_<input>.csv`` / ``shifted_<input>.csv``)."""
    test = pd.read_csv(work / "test.csv")
    shifted_dir = work / "shifted"
    shifted_dir.mkdir(exist_ok=True)
    shifted = []
    for product_id, path in zip(test["id"], test["image"], strict=True):
        target = shifted_dir / f"{product_id}.jpg"
        if not target.exists():
            shift_photo(path, target, int(product_id))
        shifted.append(str(target))
    feeds = {}
    for photos, images in (("test", list(test["image"])), ("shifted", shifted)):
        for which in INPUTS:
            frame = pd.DataFrame({"id": test["id"], "title": test["title"].fillna("")})
            frame["image"] = "" if which == "title" else images
            if which == "image":
                frame["title"] = ""
            if which == "brand_image":
                frame["title"] = [t.split()[0] if t.split() else "" for t in frame["title"]]
            path = work / f"{photos}_{which}.csv"
            frame.to_csv(path, index=False)
            feeds[f"{photos}/{which}"] = path
    return feeds


def categorize(model: Path, feed: Path, out: Path, log: Path) -> float:
    """``multimodal-cat categorize --model`` over one feed; wall seconds."""
    command = [sys.executable, "-m", "multimodal_cat", "categorize", str(feed), "-o", str(out)]
    command += ["--model", str(model), "--no-progress"]
    start = time.perf_counter()
    with log.open("a") as err:
        done = subprocess.run(command, stdout=err, stderr=err, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"categorize failed ({done.returncode}); see {log}")
    return round(time.perf_counter() - start, 1)


def truth(work: Path) -> pd.DataFrame:
    """The test rows' true paths and tags, by id."""
    test = pd.read_csv(work / "test.csv")
    test["path"] = [" > ".join(str(r[c]).strip() for c in LEVELS) for _, r in test.iterrows()]
    return test.set_index("id")


def score(rows: list[dict], true: pd.DataFrame, thresholds: dict[str, float]) -> dict:
    """Leaf accuracy, macro-F1, tag accuracies, ECE and auto-accept shares of one output."""
    ids = [int(r["id"]) for r in rows]
    predicted = [r["category_path"] for r in rows]
    expected = list(true.loc[ids, "path"])
    names = {p: i for i, p in enumerate(sorted(set(expected) | set(predicted)))}
    pred = np.array([names[p] for p in predicted])
    gold = np.array([names[p] for p in expected])
    correct = pred == gold
    confidence = np.array([float(r["confidence"]) for r in rows])
    out: dict = {
        "rows": len(rows),
        "errors": sum(1 for r in rows if r.get("status") != "ok"),
        "leaf_accuracy": round(float(correct.mean()), 4),
        "leaf_macro_f1": round(macro_f1(pred, gold, np.unique(gold)), 4),
        "ece": expected_calibration_error(confidence, correct),
        "mean_confidence": round(float(confidence.mean()), 4),
    }
    for tag in TAGS:
        want = list(true.loc[ids, tag])
        got = [next((t["value"] for t in r["tags"] if t["attribute"] == tag), None) for r in rows]
        known = [isinstance(w, str) for w in want]
        hits = [g == w for g, w, k in zip(got, want, known, strict=True) if k]
        out[f"tag_{tag}_accuracy"] = round(float(np.mean(hits)), 4) if hits else None
    for target, threshold in thresholds.items():
        accepted = confidence >= threshold
        out[f"auto_accept_at_{target}"] = {
            "threshold": round(threshold, 4),
            "share": round(float(accepted.mean()), 4),
            "precision": round(float(correct[accepted].mean()), 4) if accepted.any() else None,
        }
    out["_confidence"], out["_correct"] = confidence, correct
    return out


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def raw_copy(model: Path) -> Path:
    """A copy of the checkpoint with its category temperature reset to 1 (the raw scores)."""
    import shutil

    raw = model.with_name("model_raw")
    if raw.exists():
        shutil.rmtree(raw)
    shutil.copytree(model, raw)
    config = json.loads((raw / "config.json").read_text())
    config["category_temperature"] = 1.0
    (raw / "config.json").write_text(json.dumps(config, indent=2))
    return raw


def markdown(result: dict) -> str:
    train = result["train"]
    lines = [
        "# One checkpoint, four inputs: `train` with the README's command, scored by `categorize --model`",
        "",
        f"Made by {made_by(result['environment'])}.",
        "",
        f"Training: `{result['train_command']}` ({train['wall_seconds']} s; frozen-head recipe "
        f"defaults; tags scored from the text alone when there is text: "
        f"{train.get('text_only_tags') or 'none'}). Test: {result['rows']['test']} imaged products "
        "with `id % 5 == 0`. Shifted: the same photos letterboxed to 3:4 / 4:3, cropped by 10%, "
        "JPEG quality 60."
        + (
            f" The CLI's embedding cache was filled from `embed_fashion.py`'s after a check "
            f"(largest gap on a sample {result['cache_seeded']['max_abs_diff']:.2g}); "
            "see `fashion_cli_seed.py`."
            if result.get("cache_seeded")
            else ""
        ),
        "",
        "| photos | input | leaf accuracy | leaf macro-F1 | ECE | " + " | ".join(TAGS) + " |",
        "|---|---|---|---|---|" + "---|" * len(TAGS),
    ]
    for photos in ("cli_checkpoint", "shifted"):
        for which in INPUTS:
            m = result[photos][which]
            tags = " | ".join(f"{m[f'tag_{t}_accuracy']:.4f}" for t in TAGS)
            lines.append(
                f"| {'as shared' if photos == 'cli_checkpoint' else 'shifted'} | {which} | "
                f"{m['leaf_accuracy']:.4f} | {m['leaf_macro_f1']:.4f} | {m['ece']:.4f} | {tags} |"
            )
    cal = result["calibration"]
    lines += [
        "",
        f"Calibration (title + image, test split): ECE {cal['ece_raw']:.4f} with the raw scores, "
        f"{cal['ece_calibrated']:.4f} with the stored temperature {cal['category_temperature']}. "
        "Auto-accept at the checkpoint's stored thresholds (chosen on its eval split):",
        "",
        "| target precision | threshold | share accepted | precision measured on the accepted test rows |",
        "|---|---|---|---|",
    ]
    for target in PRECISIONS:
        a = result["cli_checkpoint"]["title_image"].get(f"auto_accept_at_{target}")
        if a:
            lines.append(f"| {target} | {a['threshold']} | {a['share']} | {a['precision']} |")
    lines += ["", "![reliability](fashion_cli_inputs_reliability.png)", ""]
    return "\n".join(lines)


def merge_into(name: str, entries: dict) -> None:
    """Write ``entries`` into ``benchmarks/results/<name>.json``, keeping its other keys."""
    data = {**earlier_results(RESULTS / name), **entries}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def merge_results(result: dict) -> None:
    """The four inputs into ``fashion_model.json``; the calibration and routing figures of
    title + image into ``review_loop.json`` (the human-in-the-loop issue's fashion half)."""
    by = "benchmarks/fashion_cli_inputs.py, " + made_by(result["environment"])
    merge_into(
        "fashion_model",
        {"cli_checkpoint": result["cli_checkpoint"], "shifted": result["shifted"],
         "cli_checkpoint_made_by": by},
    )
    title_image = result["cli_checkpoint"]["title_image"]
    routing = {k: v for k, v in title_image.items() if k.startswith("auto_accept_at_")}
    fashion = {**result["calibration"], **routing, "reliability_png": RELIABILITY, "made_by": by}
    merge_into("review_loop", {"fashion": fashion})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=WORK, help="feeds, photos, model, cache")
    parser.add_argument("--limit", type=int, default=None, help="every k-th product (smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="score the checkpoint an earlier run trained in --work (after a framing change)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="let the CLI encode everything (default: seed its cache from embed_fashion.py's, "
        "checked on a sample; see fashion_cli_seed.py)",
    )
    args = parser.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MULTIMODAL_CAT_CACHE"] = str(work / "cache")  # train and categorize share it
    env = environment("benchmarks.fashion_cli_inputs", limit=args.limit)
    rows = write_feeds(work, args.limit)
    feeds = input_feeds(work)
    seeded = None
    if not args.cold:
        from benchmarks.fashion_cli_seed import seed_cli_cache

        seeded = seed_cli_cache(work / "cache", [work / "train.csv", work / "test.csv"])
        print(f"seeded the CLI cache: {seeded}", flush=True)
    command = train_command(work, args.seed)
    log = work / "log.txt"
    start = time.perf_counter()
    model = work / "model"
    if args.reuse_model:
        earlier = json.loads((RESULTS / "fashion_cli_inputs.json").read_text())["train"]
        train = {**earlier, "reused_from_an_earlier_run": True}
    else:
        train = run_train(command, log)
    for old in work.glob("out_*.jsonl"):
        old.unlink()
    config = json.loads((model / "config.json").read_text())
    thresholds = {k: v for k, v in config.get("confidence_thresholds", {}).items() if k in PRECISIONS}
    true = truth(work)
    result: dict = {"environment": env, "rows": rows, "train": train, "cache_seeded": seeded}
    result["train_command"] = " ".join(["multimodal-cat", *command[3:]])
    seconds = {}
    for name, feed in feeds.items():
        out = work / f"out_{name.replace('/', '_')}.jsonl"
        seconds[name] = categorize(model, feed, out, log)
        photos, which = name.split("/")
        key = "cli_checkpoint" if photos == "test" else "shifted"
        result.setdefault(key, {})[which] = score(read_rows(out), true, thresholds)
    raw_out = work / "out_raw_title_image.jsonl"
    seconds["raw/title_image"] = categorize(raw_copy(model), feeds["test/title_image"], raw_out, log)
    raw = score(read_rows(raw_out), true, {})
    calibrated = result["cli_checkpoint"]["title_image"]
    stem = RESULTS / "fashion_cli_inputs" if args.limit is None else work / "fashion_cli_inputs"
    reliability_diagram(
        calibrated["_confidence"],
        calibrated["_correct"],
        stem.with_name(RELIABILITY),
        title="Fashion test split, title + image, CLI checkpoint",
        others={"raw scores (temperature 1)": (raw["_confidence"], raw["_correct"])},
    )
    result["calibration"] = {
        "category_temperature": config.get("category_temperature"),
        "ece_raw": raw["ece"],
        "ece_calibrated": calibrated["ece"],
    }
    for block in ("cli_checkpoint", "shifted"):
        for m in result[block].values():
            m.pop("_confidence"), m.pop("_correct")
    result["categorize_seconds"] = seconds
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    write_results(stem, result, markdown(result))
    if args.limit is None:
        merge_results(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
