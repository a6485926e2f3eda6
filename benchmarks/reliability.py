"""Reliability under faults and scale (issue 22): memory that must not grow with the input, a
second writer on one output, and a diverged checkpoint.

Four measurements, each in fresh child processes so that peak RSS (``wait4``'s ``ru_maxrss``)
belongs to one command alone:

1. ``taxonomy align FLAT tree.csv --encoder none`` for a tree with one root over 5k, 20k and
   50k children (before the fix, 50k built a 50k x 50k array and was killed).
2. ``suggest POOL -n 100`` over pools of 1k, 10k and 100k products with a predictor over
   Shopify's label space (10,595 categories). The predictor is a stand-in (probabilities from a
   hash of the title, one (batch x 10,595) float64 matrix per call, as the zero-shot predictor
   returns) and the title vectors are hashed 384-d vectors in place of MiniLM, so 100k products
   fit in minutes on 2 shared cores; what is measured is the command's own memory.
3. Two ``categorize --dry-run`` jobs on one output: the second must be refused at once (exit 2,
   naming the holder) and the first must finish byte-identical to a job run alone.
4. A checkpoint whose head diverged (NaN weights): every row must be an error routed to review
   (none ``ok``); a checkpoint with ``category_temperature: 0`` must be refused (exit 2).

Example:
    python -m benchmarks.reliability            # writes benchmarks/results/reliability.{json,md}
    python -m benchmarks.reliability --quick     # small sizes, prints only
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SCRATCH = REPO / "scratch" / "reliability"
TREE = "id,parent_id,name\n1,,Apparel\n2,1,Shirts\n3,1,Shoes\n4,,Kitchen\n5,4,Mugs\n6,4,Pans\n"
SEED = 0


# ------------------------------------------------------------------------------ processes
def run_measured(argv: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run a child; its exit code, peak RSS (MiB), seconds and the end of its stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    with open(SCRATCH / "child.err", "w+b") as err:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace").replace("\r", "\n")
        tail = [line for line in text.splitlines() if line.strip()][-3:]
    return {
        "exit": child.returncode,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "seconds": round(time.perf_counter() - start, 2),
        "stderr_tail": tail,
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "multimodal_cat", *args]


# ------------------------------------------------------------------------------ 1. align
def flat_tree(path: Path, children: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "parent_id", "name"])
        writer.writerow(["root", "", "Everything"])
        writer.writerows([f"c{i}", "root", f"Category number {i} item"] for i in range(children))
    return path


def align_memory(sizes: list[int]) -> list[dict[str, Any]]:
    (SCRATCH / "tree.csv").write_text(TREE)
    out = []
    for n in sizes:
        flat = flat_tree(SCRATCH / f"flat{n}.csv", n)
        target = SCRATCH / f"flat{n}.yml"
        run = run_measured(cli("taxonomy", "align", str(flat), str(SCRATCH / "tree.csv"),
                               "--encoder", "none", "--no-cache", "-o", str(target)))  # fmt: skip
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        run.update(siblings=n, rules=text.count("- input:"))
        print(json.dumps(run), flush=True)
        out.append(run)
    return out


# ---------------------------------------------------------------------------- 2. suggest
SUGGEST_CHILD = r"""
import sys, zlib
import numpy as np
import multimodal_cat.predictors.build as build
from multimodal_cat.cli.main import main
from multimodal_cat.encoders.text import TextEncoder
from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.taxonomy import Taxonomy


class ShopifyStandIn:
    # Probabilities over every Shopify category, from a hash of the title: one (batch x
    # categories) float64 matrix per call, as the zero-shot predictor's predict_proba.
    fingerprint = "shopify-stand-in"

    def __init__(self):
        self.taxonomy = Taxonomy.load("shopify")
        self.classes_ = [c.id for c in self.taxonomy]

    def predict_proba(self, products):
        out = np.full((len(products), len(self.classes_)), 1e-6)
        for row, p in enumerate(products):
            h = zlib.crc32(p.title.encode())
            out[row, h % len(self.classes_)] = 0.3 + (h % 1000) / 1500
            out[row, (h // 7) % len(self.classes_)] += 0.2
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, products, *, top_k=5, min_confidence=None):
        preds = []
        for row in self.predict_proba(products):
            j = int(row.argmax())
            c = self.taxonomy[self.classes_[j]]
            preds.append(Prediction(c.id, c.full_path, float(row[j]),
                                    [CategoryScore(c.id, c.full_path, float(row[j]))]))
        return preds


class HashedTitles:
    key, dim = "bench:hashed-titles", 384

    def encode(self, texts, **_):
        return np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(384)
                         for t in texts]).astype(np.float32)


build.build_predictor = lambda **_: ShopifyStandIn()
TextEncoder.from_name = classmethod(lambda cls, name, **_: HashedTitles())
sys.exit(main(["suggest", sys.argv[1], "--taxonomy", "shopify", "-n", "100", "-o", sys.argv[2]]))
"""


def pool_feed(path: Path, rows: int) -> Path:
    words = ["linen shirt", "coffee mug", "running shoe", "cast iron pan", "wool scarf", "desk lamp"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "description"])
        for i in range(rows):
            writer.writerow([f"p{i}", f"{words[i % 6]} model {i}", f"item {i} of the pool"])
    return path


def suggest_memory(sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        feed = pool_feed(SCRATCH / f"pool{n}.csv", n)
        tasks = SCRATCH / f"pool{n}.tasks.json"
        cache = SCRATCH / f"cache{n}"
        os.environ["MULTIMODAL_CAT_CACHE"] = str(cache)
        run = run_measured([sys.executable, "-c", SUGGEST_CHILD, str(feed), str(tasks)])
        run.update(products=n, tasks=len(json.loads(tasks.read_text())) if tasks.exists() else 0)
        print(json.dumps(run), flush=True)
        out.append(run)
    return out


# ------------------------------------------------------------------------ 3. two writers
SLOW_JOB = r"""
import sys, time
from multimodal_cat.feeds import categorize_feed
from multimodal_cat.feeds.write import ResumeError
from multimodal_cat.predictors import DryRunPredictor

class Slow(DryRunPredictor):
    fingerprint = "dry-run"
    def predict(self, products, **kwargs):
        time.sleep(float(sys.argv[3]))
        return super().predict(products, **kwargs)

try:
    categorize_feed(sys.argv[1], Slow(), sys.argv[2], batch_size=64, progress=False,
                    resume=sys.argv[4:] == ["resume"])
except ResumeError as error:
    print(f"multimodal-cat: {error}", file=sys.stderr)
    sys.exit(2)
"""


def message(run: dict[str, Any]) -> str:
    """The command's own message (its ``multimodal-cat:`` line), else its last line."""
    said = [line for line in run["stderr_tail"] if line.startswith("multimodal-cat:")]
    return (said or run["stderr_tail"] or [""])[-1][:400]


def two_writers(rows: int, seconds: float = 20.0) -> dict[str, Any]:
    """Job A writes ``same.csv`` for about ``seconds``; job B is started on it meanwhile."""
    feed_a, feed_b = SCRATCH / "feedA.csv", SCRATCH / "feedB.csv"
    pool_feed(feed_a, rows)
    feed_b.write_text("id,title\n" + "".join(f"b{i},other product {i}\n" for i in range(rows)))
    same, alone = SCRATCH / "same.csv", SCRATCH / "alone.csv"
    for path in (same, alone):
        path.unlink(missing_ok=True)
        (path.parent / f".{path.name}.progress.json").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pause = str(seconds / max(1, rows // 64))
    first = subprocess.Popen([sys.executable, "-c", SLOW_JOB, str(feed_a), str(same), pause], env=env)
    progress = SCRATCH / f".{same.name}.progress.json"
    while first.poll() is None and not (progress.exists() and '"rows": 0,' not in progress.read_text()):
        time.sleep(0.05)
    second = run_measured(cli("categorize", str(feed_b), "--dry-run", "-o", str(same), "--no-progress"))
    still_running = first.poll() is None
    first.wait()
    run_measured([sys.executable, "-c", SLOW_JOB, str(feed_a), str(alone), "0"])
    data = same.read_bytes()
    result = {
        "rows": rows,
        "first_still_running_when_second_ended": still_running,
        "second_exit": second["exit"],
        "second_seconds": second["seconds"],
        "second_message": message(second),
        "first_exit": first.returncode,
        "first_output_identical_to_a_lone_run": data == alone.read_bytes(),
        "nul_bytes_in_output": data.count(b"\0"),
        "output_sha256": hashlib.sha256(data).hexdigest(),
    }
    edited = data.replace(b"Dry run > 7", b"Dry run > 8", 1)
    result["edit_kept_the_size"] = len(edited) == len(data) and edited != data
    same.write_bytes(edited)
    resumed = run_measured([sys.executable, "-c", SLOW_JOB, str(feed_a), str(same), "0", "resume"])
    result["resume_after_same_size_edit_exit"] = resumed["exit"]
    result["resume_after_same_size_edit_message"] = message(resumed)
    print(json.dumps(result), flush=True)
    return result


# --------------------------------------------------------------------------- 4. NaN model
def nan_checkpoint() -> dict[str, Any]:
    import torch

    from multimodal_cat.feeds import read_output
    from multimodal_cat.modeling.testing import tiny_model, tiny_processor

    torch.manual_seed(SEED)
    folder = SCRATCH / "ck_nan"
    model = tiny_model()
    with torch.no_grad():
        for parameter in model.category_head.parameters():
            parameter.fill_(float("nan"))  # what a diverged run leaves in the head
    model.save_pretrained(folder)
    tiny_processor(SCRATCH / "tok").save_pretrained(folder)
    feed = SCRATCH / "small.csv"
    feed.write_text("id,title\n1,Blue shirt\n2,Mug\n3,red leather boots\n")
    out = SCRATCH / "nan_out.csv"
    run = run_measured(cli("categorize", str(feed), "--model", str(folder), "--review-below", "0.9",
                           "-o", str(out), "--no-progress"))  # fmt: skip
    rows = list(read_output(out)) if out.exists() else []
    zero = SCRATCH / "ck_t0"
    model.save_pretrained(zero)
    tiny_processor(SCRATCH / "tok").save_pretrained(zero)
    config = json.loads((zero / "config.json").read_text())
    config["category_temperature"] = 0
    (zero / "config.json").write_text(json.dumps(config))
    refused = run_measured(cli("categorize", str(feed), "--model", str(zero), "-o", str(SCRATCH / "t0.csv"),
                               "--no-progress"))  # fmt: skip
    result = {
        "exit": run["exit"],
        "rows": len(rows),
        "ok_rows": sum(r["status"] == "ok" for r in rows),
        "error_rows": sum(r["status"] == "error" for r in rows),
        "routed_to_review": sum(str(r.get("needs_review")) == "True" for r in rows),
        "first_reason": rows[0]["review_reason"] if rows else "",
        "temperature_0_exit": refused["exit"],
        "temperature_0_message": message(refused),
    }
    print(json.dumps(result), flush=True)
    return result


# --------------------------------------------------------------------------------- report
def ratios(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    base = runs[0]
    return {f"{r[key]}/{base[key]}": round(r["peak_rss_mib"] / base["peak_rss_mib"], 3) for r in runs[1:]}


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Reliability under faults and scale (issue 22)", "",
             f"`{report['command']}` at commit `{report['commit']}`, {report['date']}, "
             f"load average {report['load_before']} before, {report['load_after']} after.", "",
             "## Alignment memory, one root over N children (`taxonomy align FLAT tree.csv --encoder none`)", "",
             "| siblings | peak RSS (MiB) | seconds | rules written | exit |", "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in report["align"]:
        lines.append(f"| {r['siblings']:,} | {r['peak_rss_mib']:,.0f} | {r['seconds']} | {r['rules']:,} | {r['exit']} |")
    lines += ["", f"Peak RSS ratios against 5k: {report['align_ratios']}. Before the fix the 50k case "
              "allocated a 50k x 50k float64 array (20.9 GB) and was killed.", "",
              "## `suggest -n 100` memory over a pool of N products (Shopify's 10,595 categories)", "",
              "Stand-in predictor over Shopify's label space (one batch x 10,595 float64 matrix per "
              "call, as the zero-shot predictor) and hashed 384-d title vectors in place of MiniLM.", "",
              "| products | peak RSS (MiB) | seconds | tasks | exit |", "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in report["suggest"]:
        lines.append(f"| {r['products']:,} | {r['peak_rss_mib']:,.0f} | {r['seconds']} | {r['tasks']} | {r['exit']} |")
    lines += ["", f"Peak RSS ratios against 1k: {report['suggest_ratios']} (wanted: 100k/1k <= 1.5).", ""]
    w = report["two_writers"]
    lines += ["## Two jobs on one output", "",
              f"A second `categorize --dry-run -o same.csv` started while the first ({w['rows']:,} rows) "
              f"was writing (first still running when the second ended: "
              f"{w['first_still_running_when_second_ended']}): exit {w['second_exit']} after "
              f"{w['second_seconds']} s, saying: "
              f"\"{w['second_message']}\". The first exited {w['first_exit']}; its output is "
              f"{'byte-identical' if w['first_output_identical_to_a_lone_run'] else 'DIFFERENT'} to a "
              f"job run alone ({w['nul_bytes_in_output']} NUL bytes). After an in-place edit that keeps "
              f"the size, `--resume` exits {w['resume_after_same_size_edit_exit']}: "
              f"\"{w['resume_after_same_size_edit_message']}\".", ""]  # fmt: skip
    n = report["nan_checkpoint"]
    lines += ["## A diverged checkpoint (NaN head weights), `--review-below 0.9`", "",
              f"Exit {n['exit']}; {n['rows']} rows: {n['ok_rows']} ok, {n['error_rows']} error rows, "
              f"{n['routed_to_review']} routed to review (\"{n['first_reason']}\"). A checkpoint with "
              f"`category_temperature: 0`: exit {n['temperature_0_exit']} (\"{n['temperature_0_message']}\").", ""]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; print, write nothing")
    args = parser.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    align_sizes = [500, 2000, 5000] if args.quick else [5000, 20000, 50000]
    pool_sizes = [100, 1000, 3000] if args.quick else [1000, 10000, 100000]
    load_before = [round(x, 2) for x in os.getloadavg()]
    report: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.reliability", *sys.argv[1:]]),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=REPO).stdout.strip(),  # fmt: skip
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seeds": {"torch": SEED, "pool": "crc32 of each title"},
        "load_before": load_before,
    }
    report["align"] = align_memory(align_sizes)
    report["align_ratios"] = ratios(report["align"], "siblings")
    report["suggest"] = suggest_memory(pool_sizes)
    report["suggest_ratios"] = ratios(report["suggest"], "products")
    report["two_writers"] = two_writers(2000 if args.quick else 20000, 8.0 if args.quick else 20.0)
    report["nan_checkpoint"] = nan_checkpoint()
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(report)
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "reliability.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / "reliability.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
