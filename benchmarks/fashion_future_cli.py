"""The future-looking split through the command line: one checkpoint trained with the README's
``train`` command on the products of 2011 and earlier, scored by ``categorize --model`` on the
imaged products of 2012 and later (issue 27).

1. Feeds: ``train.csv`` = the imaged products of 2011 and earlier plus every text-only product
   (``styles.csv`` rows without a photo, any year); ``test.csv`` = the imaged products of 2012
   and later (2,803). Nothing of the test rows reaches training, calibration or the thresholds
   (the command holds out its own ``--eval-split 0.1``).
2. ``multimodal-cat train`` with the README's flags, plus ``--text-only-tags`` as decided on the
   carved future split by ``fashion_trust.py`` (read from its results).
3. ``categorize --model`` on four inputs: title + photo, title only, photo only, brand word +
   photo. Leaf accuracy and macro-F1 per input, title + photo against title only per top-level
   category, each tag's accuracy; precision and share auto-accepted at the stored 95/98/99%
   thresholds of each input kind (``thresholds_by_input``); the output folder's size against the
   final model's.

Writes ``benchmarks/results/fashion_future_cli.{json,md}`` and the keys ``future_split``,
``thresholds_by_input`` and ``checkpoint_folder`` of ``fashion_model.json``.

Usage (from the repo root, after ``embed_fashion.py``; about 10 minutes on 2 busy cores)::

    python -m benchmarks.fashion_future_cli
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.fashion_cli import TAGS
from benchmarks.fashion_cli_inputs import (
    INPUTS,
    LEVELS,
    categorize,
    merge_into,
    read_rows,
    run_train,
    score,
    train_command,
)
from benchmarks.fashion_data import DATA_DIR, load_fashion_embeddings
from benchmarks.fashion_model import RESULTS, earlier_results, environment, made_by, write_results

KIND = {"title_image": "text+image", "title": "text", "image": "image", "brand_image": "text+image"}
TARGETS = ("0.95", "0.98", "0.99")


def write_future_feeds(work: Path) -> dict[str, int]:
    """``train.csv`` (imaged <= 2011 + every text-only row) and ``test.csv`` (imaged >= 2012)."""
    styles = pd.read_csv(DATA_DIR / "styles.csv", on_bad_lines="skip")
    images = pd.read_csv(DATA_DIR / "styles_with_images.csv", on_bad_lines="skip")
    frame = styles.merge(images[["id", "image"]], on="id", how="left")
    frame["image"] = [str(DATA_DIR / p) if isinstance(p, str) else "" for p in frame["image"]]
    frame = frame.rename(columns={"productDisplayName": "title"})
    embedded = load_fashion_embeddings("images")  # photos not yet embedded are left out
    missing = set(embedded.ids[~embedded.found].tolist())
    frame = frame[~frame["id"].isin(missing)]
    imaged = frame["image"] != ""
    test = imaged & (frame["year"].fillna(0) >= 2012)
    frame[~test].to_csv(work / "train.csv", index=False)
    frame[test].to_csv(work / "test.csv", index=False)
    return {"train": int((~test).sum()), "train_imaged": int((~test & imaged).sum()),
            "test": int(test.sum()), "imaged_products_left_out_without_embedding": len(missing)}


def input_feeds(work: Path) -> dict[str, Path]:
    test = pd.read_csv(work / "test.csv")
    feeds = {}
    for which in INPUTS:
        frame = pd.DataFrame({"id": test["id"], "title": test["title"].fillna("")})
        frame["image"] = "" if which == "title" else list(test["image"])
        if which == "image":
            frame["title"] = ""
        if which == "brand_image":
            frame["title"] = [t.split()[0] if t.split() else "" for t in frame["title"]]
        feeds[which] = work / f"test_{which}.csv"
        frame.to_csv(feeds[which], index=False)
    return feeds


def truth(work: Path) -> pd.DataFrame:
    test = pd.read_csv(work / "test.csv")
    test["path"] = [" > ".join(str(r[c]).strip() for c in LEVELS) for _, r in test.iterrows()]
    return test.set_index("id")


def no_trust_copy(model: Path) -> Path:
    """A copy of the checkpoint without its photo counts: the fused answer for every product."""
    import shutil

    copy = model.with_name("model_no_trust")
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((copy / "config.json").read_text())
    config["leaf_photo_counts"] = None
    (copy / "config.json").write_text(json.dumps(config, indent=2))
    return copy


def by_top_level(rows: dict[str, list[dict]], true: pd.DataFrame) -> dict[str, dict]:
    """Title + photo (with and without the photo trust) against title only per top-level category."""
    out = {}
    for which in ("title_image", "title", "title_image_no_trust"):
        for r in rows[which]:
            top = str(true.loc[int(r["id"]), "masterCategory"])
            cell = out.setdefault(top, {"rows": 0, "title_image": 0, "title": 0, "title_image_no_trust": 0})
            hit = r["category_path"] == true.loc[int(r["id"]), "path"]
            cell[which] += int(hit)
            if which == "title":
                cell["rows"] += 1
    return {top: {"rows": c["rows"], **{k: round(c[k] / c["rows"], 4) for k in c if k != "rows"}}
            for top, c in sorted(out.items())}


def scarce_types(work: Path, rows: dict[str, list[dict]], true: pd.DataFrame, below: int) -> dict:
    """Test rows whose article type had fewer than ``below`` training photos (none, for the
    types new in 2012 and later): the case the photo trust is for."""
    train = pd.read_csv(work / "train.csv")
    photos = train[train["image"].fillna("") != ""]["articleType"].value_counts()
    types = sorted(t for t in set(true["articleType"]) if photos.get(t, 0) < below)
    where = {int(i) for i in true.index[true["articleType"].isin(types)]}
    out: dict = {"below_photos": below, "types": types, "rows": 0}
    for which in ("title_image", "title", "title_image_no_trust", "image"):
        hits = [r["category_path"] == true.loc[int(r["id"]), "path"] for r in rows[which]
                if int(r["id"]) in where]
        out["rows"] = len(hits)
        out[which] = round(float(np.mean(hits)), 4) if hits else None
    return out


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def checkpoint_folder(model: Path) -> dict:
    final = sum(p.stat().st_size for p in model.iterdir() if p.is_file())
    total = folder_size(model)
    return {"folder_bytes": total, "final_model_bytes": final, "ratio": round(total / final, 3),
            "checkpoints": sorted(p.name for p in model.glob("checkpoint-*"))}


def markdown(result: dict) -> str:
    lines = [
        "# Future-looking split through the command line (issue 27)",
        "",
        f"Made by {made_by(result['environment'])}.",
        "",
        f"Training: `{result['train_command']}` on {result['rows']['train']} products "
        f"({result['rows']['train_imaged']} with a photo, 2011 and earlier); test: "
        f"{result['rows']['test']} imaged products of 2012 and later.",
        "",
        "| input | leaf accuracy | leaf macro-F1 | ECE | " + " | ".join(TAGS) + " |",
        "|---|---|---|---|" + "---|" * len(TAGS),
    ]
    for which in INPUTS:
        m = result["future_split"][which]
        tags = " | ".join(f"{m[f'tag_{t}_accuracy']:.4f}" for t in TAGS)
        lines.append(f"| {which} | {m['leaf_accuracy']:.4f} | {m['leaf_macro_f1']:.4f} | "
                     f"{m['ece']:.4f} | {tags} |")
    lines += ["", "Title + photo against title only per top-level category:", "",
              "| top level | rows | title + photo | title | title + photo without the trust rule |",
              "|---|---|---|---|---|"]
    for top, c in result["future_split"]["by_top_level"].items():
        lines.append(f"| {top} | {c['rows']} | {c['title_image']:.4f} | {c['title']:.4f} | "
                     f"{c['title_image_no_trust']:.4f} |")
    lines += ["", "Stored thresholds per input kind (fitted on the command's own eval split), "
              "measured on the test rows of that kind:", "",
              "| input | target | threshold | precision | share accepted |", "|---|---|---|---|---|"]
    for which, targets in result["thresholds_by_input"].items():
        for target, a in targets.items():
            lines.append(f"| {which} | {target} | {a['threshold']} | {a['precision']} | {a['share']} |")
    c = result["checkpoint_folder"]
    lines += ["", f"Output folder {c['folder_bytes'] / 1e6:.1f} MB for a final model of "
              f"{c['final_model_bytes'] / 1e6:.1f} MB ({c['ratio']}x; kept: {', '.join(c['checkpoints'])})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fashion_future_cli"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse-model", action="store_true",
                        help="score the checkpoint an earlier run trained in --work")
    parser.add_argument("--already-seeded", action="store_true",
                        help="the work folder's CLI cache was seeded by an earlier run")
    args = parser.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MULTIMODAL_CAT_CACHE"] = str(work / "cache")
    env = environment("benchmarks.fashion_future_cli")
    rows = write_future_feeds(work)
    feeds = input_feeds(work)
    from benchmarks.fashion_cli_seed import seed_cli_cache

    seeded = None
    if not (args.reuse_model or args.already_seeded):
        seeded = seed_cli_cache(work / "cache", [work / "train.csv", work / "test.csv"])
    print(f"seeded the CLI cache: {seeded}", flush=True)
    gate = earlier_results(RESULTS / "fashion_trust_choice")  # fashion_trust.py's decisions
    command = train_command(work, args.seed)
    if "carved_future_gate" in gate:
        command += ["--text-only-tags", ",".join(gate["carved_future_gate"]) or "none"]
    log = work / "log.txt"
    start = time.perf_counter()
    if args.reuse_model:  # score the checkpoint an earlier run trained in --work
        metrics = json.loads((work / "model" / "all_results.json").read_text())
        train = {**metrics, "reused_from_an_earlier_run": True}
    else:
        train = run_train(command, log)
    model = work / "model"
    config = json.loads((model / "config.json").read_text())
    by_input = config.get("confidence_thresholds_by_input", {})
    true = truth(work)
    result: dict = {"environment": env, "rows": rows, "train": train, "cache_seeded": seeded,
                    "train_command": " ".join(["multimodal-cat", *command[3:]]),
                    "future_split": {}, "thresholds_by_input": {}}
    outputs = {}
    for which, feed in feeds.items():
        out = work / f"out_{which}.jsonl"
        categorize(model, feed, out, log)
        outputs[which] = read_rows(out)
        thresholds = {t: v for t, v in by_input.get(KIND[which], {}).items() if t in TARGETS}
        scored = score(outputs[which], true, thresholds)
        scored.pop("_confidence"), scored.pop("_correct")
        accepted = {k[len("auto_accept_at_"):]: scored.pop(k) for k in list(scored)
                    if k.startswith("auto_accept_at_")}
        result["future_split"][which] = scored
        if which != "brand_image":
            result["thresholds_by_input"][which] = accepted
    untrusting = no_trust_copy(model)  # the same checkpoint, fused answer always (before issue 27)
    out = work / "out_title_image_no_trust.jsonl"
    categorize(untrusting, feeds["title_image"], out, log)
    outputs["title_image_no_trust"] = read_rows(out)
    plain = score(outputs["title_image_no_trust"], true, {})
    result["future_split"]["title_image_no_trust"] = {
        k: plain[k] for k in ("leaf_accuracy", "leaf_macro_f1", "ece")
    }
    result["future_split"]["by_top_level"] = by_top_level(outputs, true)
    result["future_split"]["types_without_training_photos"] = scarce_types(work, outputs, true, 1)
    result["future_split"]["types_with_few_training_photos"] = scarce_types(work, outputs, true, 10)
    overall = result["future_split"]
    result["future_split"]["title_image_at_least_title"] = bool(
        overall["title_image"]["leaf_accuracy"] >= overall["title"]["leaf_accuracy"]
        and all(c["title_image"] >= c["title"] for c in overall["by_top_level"].values())
    )
    result["checkpoint_folder"] = checkpoint_folder(model)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    write_results(RESULTS / "fashion_future_cli", result, markdown(result))
    by = "benchmarks/fashion_future_cli.py, " + made_by(env)
    merge_into("fashion_model", {"future_split": result["future_split"],
                                 "thresholds_by_input": result["thresholds_by_input"],
                                 "checkpoint_folder": result["checkpoint_folder"],
                                 "future_split_made_by": by})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
