"""The feed-level confidence shift: its sample size, chosen on dev rows, and the feed job's figures.

The zero-shot confidence is shifted, with no label, by what the products themselves show
(:mod:`multimodal_cat.zero_shot.confidence`). Read per call, a feed job's batches of 64 each
lean mostly on the cautious prior; the job now fits one shift per feed on up to
``SHIFT_SAMPLE_ROWS`` records spread over it (:mod:`multimodal_cat.feeds.shift`). This script:

* ``sample_size`` (Flipkart dev, fashion dev; nothing else chooses it): for each candidate N,
  the shift from the N records at ``sample_numbers`` against the whole dev feed's, its spread
  over 20 random samples of N, and the wrong share at >= 0.9 and ECE it gives the dev rows;
* ``mwpd_validation.<titles|title_description_seller>.feed_level_shift`` and
  ``flipkart_test_confidence.feed_level_shift``: the figures as the FEED JOB produces them
  (``categorize_feed``, batches of 64, package defaults), each with the job's figures when
  every batch reads its own shift (``per_batch_shift``, the behaviour before) and the shift
  the job fitted;
* ``cost``: each job's time with the feed's shift, against the same job with per-batch shifts
  (each in a fresh embedding cache), and the fitting step's own time.

MWPD is evaluation only: its titles and paths stay in a temporary folder, never committed.

Usage:
    python -m benchmarks.zero_shot_feed_shift [--data ../shared/data] [--skip-choice]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.fashion_model import RESULTS, environment
from benchmarks.zero_shot_benchmark import load as load_fashion
from benchmarks.zero_shot_general_confidence import metrics, mwpd, within
from benchmarks.zero_shot_general_eval import load_flipkart
from multimodal_cat.feeds import categorize_feed, read_output
from multimodal_cat.feeds.columns import ColumnMap
from multimodal_cat.feeds.shift import SHIFT_SAMPLE_ROWS, sample_file, sample_numbers, settle_shift
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.calibration import expected_calibration_error
from multimodal_cat.zero_shot.confidence import DEFAULT_CONFIDENCE, FeedShift, shifted

CANDIDATES = (100, 250, 500, 1000, 2000, 4000)
RULE = "the smallest candidate whose shift's SD over 20 random samples is <= 0.05 on both dev feeds"
TRIALS = 20
BATCH = 64


def raw_confidences(tax: Taxonomy, titles: list[str], truth: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The confidence model's reading of the package's answers (before any shift), and whether
    each is right (the node or a branch above it)."""
    zs = ZeroShotCategorizer(tax, tags=False, reviewed=False)
    zs._prepare()
    scored = zs._probabilities(titles)
    choices = zs._choices(scored)
    raw = zs._model_confidence(scored, np.array([c.confidence for c in choices]))
    predicted = [zs.index_.view.ids[c.position] for c in choices]
    return raw, within(zs, predicted, truth)


def _scored(conf: np.ndarray, ok: np.ndarray) -> dict:
    sure = conf >= 0.9
    return {
        "share_at_conf_0_9": round(float(sure.mean()), 4),
        "wrong_share_at_conf_0_9": round(float(1 - ok[sure].mean()), 4) if sure.any() else None,
        "ece": round(expected_calibration_error(conf, ok), 4),
    }


def sample_size(raw: np.ndarray, ok: np.ndarray) -> dict:
    """Each candidate N on one dev feed (rows in file order), against one call and calls of 64."""
    whole = FeedShift.fit(raw).shift
    per_batch = np.concatenate(
        [shifted(raw[s : s + BATCH], DEFAULT_CONFIDENCE.shift_for(raw[s : s + BATCH])) for s in range(0, len(raw), BATCH)]
    )
    out = {"rows": len(raw), "accuracy": round(float(ok.mean()), 4), "whole_feed_shift": round(whole, 4),
           "one_call": _scored(shifted(raw, whole), ok), "calls_of_64": _scored(per_batch, ok)}  # fmt: skip
    rng = np.random.default_rng(0)
    for n in CANDIDATES:
        if n >= len(raw):
            continue
        spread = np.array(sample_numbers(len(raw), n)) - 1
        shift = FeedShift.fit(raw[spread]).shift
        trials = [FeedShift.fit(raw[rng.choice(len(raw), n, replace=False)]).shift for _ in range(TRIALS)]
        out[f"n_{n}"] = {
            "shift": round(shift, 4),
            "off_whole_feed": round(shift - whole, 4),
            "random_samples_sd": round(float(np.std(trials)), 4),
            "random_samples_max_off": round(float(np.max(np.abs(np.array(trials) - whole))), 4),
            **_scored(shifted(raw, shift), ok),
        }
    return out


def choose(data: Path) -> dict:
    """``sample_size`` on Flipkart dev and fashion dev."""
    tax_fk, fk = load_flipkart(data)
    dev = fk[~fk["test"]]
    tax_fa, fa = load_fashion(data)
    fa_dev = fa[fa["id"] % 5 != 0]
    fa_truth = [tax_fa.find(p).id for p in fa_dev["path"]]
    return {
        "flipkart_dev": sample_size(*raw_confidences(tax_fk, dev["title"].astype(str).tolist(), dev["category_id"].tolist())),
        "fashion_dev": sample_size(*raw_confidences(tax_fa, fa_dev["productDisplayName"].astype(str).tolist(), fa_truth)),
        "candidates": list(CANDIDATES),
        "random_trials": TRIALS,
        "package_constant": SHIFT_SAMPLE_ROWS,
        "rule": RULE,
    }  # fmt: skip


class PerBatch:
    """The zero-shot predictor without ``fit_feed_shift``: each batch reads its own shift (the
    feed job before the feed-level shift)."""

    def __init__(self, zs: ZeroShotCategorizer) -> None:
        self.zs, self.taxonomy = zs, zs.taxonomy

    def predict(self, products, **kwargs):  # noqa: ANN001, ANN201 - the Predictor contract
        return self.zs.predict(products, **kwargs)

    def predict_proba(self, products):  # noqa: ANN001, ANN201
        return self.zs.predict_proba(products)


def fresh_cache(work: Path, name: str) -> None:
    """A new, empty embedding cache (so every timed job encodes its feed itself)."""
    os.environ["MULTIMODAL_CAT_CACHE"] = str(work / f"cache-{name}")


def job(tax: Taxonomy, feed: Path, out: Path, truth: list[str], per_batch: bool) -> dict:
    """One ``categorize_feed`` run (batches of 64, package defaults), scored against ``truth``."""
    zs = ZeroShotCategorizer(tax)
    zs._prepare()  # the tree's matrix (cached after a first run), outside the timed job
    started = time.monotonic()
    summary = categorize_feed(feed, PerBatch(zs) if per_batch else zs, out, batch_size=BATCH, progress=False)
    seconds = time.monotonic() - started
    rows = sorted(read_output(out), key=lambda r: int(r["row"]))
    predicted = [r["category_id"] for r in rows]
    conf = np.array([float(r["confidence"]) for r in rows])
    entry = {"statuses": {s: sum(r["status"] == s for r in rows) for s in ("ok", "degraded", "error")},
             **metrics(zs, predicted, truth, conf), "job_seconds": round(seconds, 2)}  # fmt: skip
    if summary.confidence_shift is not None:
        entry["shift"] = round(summary.confidence_shift.shift, 4)
        entry["shift_rests_on_products"] = summary.confidence_shift.products
    return entry


def fit_seconds(tax: Taxonomy, feed: Path) -> float:
    """The feed's shift step alone (read the sample, score it, fit), as the job runs it."""
    zs = ZeroShotCategorizer(tax)
    zs._prepare()  # the tree, as the job has it before its first batch
    started = time.monotonic()
    settle_shift(zs, None, lambda: sample_file(feed, "csv"), ColumnMap().resolve(pd.read_csv(feed, nrows=0).columns), None, None)
    return time.monotonic() - started


def feed_jobs(data: Path, work: Path) -> dict:
    """The feed job on MWPD validation (titles; title + description + seller category) and
    Flipkart test; feeds are written to ``work`` (temporary, never committed)."""
    tax_mw, mw = mwpd(data)
    val = mw[mw.split == "validation"]
    tax_fk, fk = load_flipkart(data)
    test = fk[fk["test"]]
    feeds = {
        "mwpd_titles": (tax_mw, val[["id", "title"]], val["category_id"].tolist()),
        "mwpd_title_description_seller": (
            tax_mw, val[["id", "title", "description", "seller_category"]], val["category_id"].tolist()
        ),
        "flipkart_test": (tax_fk, test[["title"]], test["category_id"].tolist()),
    }
    out = {}
    for name, (tax, frame, truth) in feeds.items():
        feed = work / f"{name}.csv"
        frame.to_csv(feed, index=False)
        entry = {}
        for label, per_batch in (("per_batch_shift", True), ("feed_level_shift", False)):
            fresh_cache(work, f"{name}-{label}")
            entry[label] = job(tax, feed, work / f"{name}-{label}.csv", truth, per_batch)
            print(name, label, entry[label], flush=True)
        fresh_cache(work, f"{name}-fit")
        fit = fit_seconds(tax, feed)
        base = entry["per_batch_shift"]["job_seconds"]
        entry["cost"] = {
            "fit_step_seconds_fresh_cache": round(fit, 2),
            "fit_step_over_per_batch_job": round(fit / base, 4),
            "feed_level_job_over_per_batch_job": round(entry["feed_level_shift"]["job_seconds"] / base, 4),
        }
        out[name] = entry
    return out


def markdown(run: dict, jobs: dict, choice: dict | None, before: dict) -> str:
    """The section this script owns in ``zero_shot_general.md``."""
    lines = ["", "## Feed-level confidence shift (zero_shot_feed_shift)", "",
             f"Made by `{run['command']}` at commit `{run['git_commit'][:10]}` on {run['date_utc']} "
             f"(load average {run['load_average_start']} -> {run['load_average_end']}).", "",
             "Wrong share among answers at confidence >= 0.9 (share of answers at >= 0.9, ECE):", "",
             "| feed | one call (predict) | calls of 64, per-call shift (before) | feed job, per-batch shift | feed job, feed-level shift | shift (products) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, key in (("MWPD validation, titles", "mwpd_titles"),
                      ("MWPD validation, title + description + seller category", "mwpd_title_description_seller"),
                      ("Flipkart test", "flipkart_test")):  # fmt: skip
        one, b64 = before[key]
        e = jobs[key]
        cell = lambda m: f"{m['wrong_share_at_conf_0_9']} ({m['share_at_conf_0_9']}, {m['ece']})"  # noqa: E731
        f = e["feed_level_shift"]
        lines.append(f"| {name} | {cell(one)} | {cell(b64)} | {cell(e['per_batch_shift'])} | {cell(f)} | "
                     f"{f.get('shift')} ({f.get('shift_rests_on_products')}) |")  # fmt: skip
    lines += ["", "Cost (2 shared CPU cores, fresh embedding cache per job). The sample is up to "
              f"{SHIFT_SAMPLE_ROWS:,} records, here 2,000 of each feed's 2,563 to 3,000, so the fitting step "
              "scores most of the feed; the job then reads those encodings back from the embedding cache. "
              "On a larger feed the step stays the cost of scoring that many products:", ""]  # fmt: skip
    for key, e in jobs.items():
        c = e["cost"]
        lines.append(f"- {key}: per-batch job {e['per_batch_shift']['job_seconds']} s, feed-level job "
                     f"{e['feed_level_shift']['job_seconds']} s (x{c['feed_level_job_over_per_batch_job']}); the "
                     f"fitting step alone {c['fit_step_seconds_fresh_cache']} s (x{c['fit_step_over_per_batch_job']} of the job)")  # fmt: skip
    if choice:
        lines += ["", f"Sample size (chosen on dev rows; package constant {choice['package_constant']}):", "",
                  "| dev feed | N | shift - whole feed's | sd over 20 random samples | wrong at >= 0.9 | ECE |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for dev in ("flipkart_dev", "fashion_dev"):
            d = choice[dev]
            for n in choice["candidates"]:
                if f"n_{n}" in d:
                    x = d[f"n_{n}"]
                    lines.append(f"| {dev} | {n} | {x['off_whole_feed']} | {x['random_samples_sd']} | "
                                 f"{x['wrong_share_at_conf_0_9']} | {x['ece']} |")  # fmt: skip
            lines.append(f"| {dev} | all {d['rows']} | 0 | - | {d['one_call']['wrong_share_at_conf_0_9']} | {d['one_call']['ece']} |")
            lines.append(f"| {dev} | calls of 64 | - | - | {d['calls_of_64']['wrong_share_at_conf_0_9']} | {d['calls_of_64']['ece']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--skip-choice", action="store_true", help="keep the stored sample-size figures")
    parser.add_argument("--only-choice", action="store_true", help="the sample-size figures only")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the markdown from the JSON")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data)
    env = environment("benchmarks.zero_shot_feed_shift", encoder="minilm", seed=0, batch_size=BATCH)
    path = RESULTS / "zero_shot_general.json"
    merged = json.loads(path.read_text()) if path.is_file() else {}
    if args.markdown_only:
        write_markdown(merged, _stored_jobs(merged))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MULTIMODAL_CAT_CALIBRATION"] = str(work / "calibration")  # no stored review calibration
        choice = None if args.skip_choice else choose(data)
        if args.only_choice:
            merged.setdefault("feed_level_shift_run", {})["sample_size"] = choice
            merged["feed_level_shift_run"]["sample_size_run"] = {**env, "load_average_end": list(os.getloadavg())}
            path.write_text(json.dumps(merged, indent=2) + "\n")
            print(json.dumps(choice, indent=1))
            return 0
        jobs = feed_jobs(data, work)
    env["load_average_end"] = list(os.getloadavg())
    old = merged.get("feed_level_shift_run", {})
    if old.get("sample_size"):
        old["sample_size"]["package_constant"] = SHIFT_SAMPLE_ROWS
        old["sample_size"]["rule"] = RULE
    merged["feed_level_shift_run"] = {
        **env,
        "sample_size": choice if choice is not None else old.get("sample_size"),
        "sample_size_run": env if choice is not None else old.get("sample_size_run"),
        "cost": {k: v["cost"] for k, v in jobs.items()},
    }
    for key, name in (("mwpd_titles", "titles"), ("mwpd_title_description_seller", "title_description_seller")):
        merged["mwpd_validation"][name]["feed_level_shift"] = jobs[key]["feed_level_shift"]
        merged["mwpd_validation"][name]["feed_job_per_batch_shift"] = jobs[key]["per_batch_shift"]
    merged["flipkart_test_confidence"]["feed_level_shift"] = jobs["flipkart_test"]["feed_level_shift"]
    merged["flipkart_test_confidence"]["feed_job_per_batch_shift"] = jobs["flipkart_test"]["per_batch_shift"]
    path.write_text(json.dumps(merged, indent=2) + "\n")
    write_markdown(merged, jobs)
    return 0


def _stored_jobs(merged: dict) -> dict:
    """The feed jobs' figures as :func:`feed_jobs` returned them, read back from the JSON."""
    cost = merged["feed_level_shift_run"]["cost"]
    sources = {"mwpd_titles": merged["mwpd_validation"]["titles"],
               "mwpd_title_description_seller": merged["mwpd_validation"]["title_description_seller"],
               "flipkart_test": merged["flipkart_test_confidence"]}  # fmt: skip
    return {
        key: {"feed_level_shift": e["feed_level_shift"], "per_batch_shift": e["feed_job_per_batch_shift"], "cost": cost[key]}
        for key, e in sources.items()
    }


def write_markdown(merged: dict, jobs: dict) -> None:
    """Replace this script's section of ``zero_shot_general.md`` (print it too)."""
    before = {
        "mwpd_titles": (merged["mwpd_validation"]["titles"], merged["mwpd_validation"]["titles"]["batches_of_64"]),
        "mwpd_title_description_seller": (
            merged["mwpd_validation"]["title_description_seller"],
            merged["mwpd_validation"]["title_description_seller"]["batches_of_64"],
        ),
        "flipkart_test": (merged["flipkart_test_confidence"], merged["flipkart_test_confidence"]["batches_of_64"]),
    }
    text = markdown(merged["feed_level_shift_run"], jobs, merged["feed_level_shift_run"]["sample_size"], before)
    md = RESULTS / "zero_shot_general.md"
    old_md = md.read_text() if md.is_file() else ""
    marker = "\n## Feed-level confidence shift (zero_shot_feed_shift)"
    head, _, tail = old_md.partition(marker)
    rest = tail.split("\n## ", 1)[1] if "\n## " in tail else ""
    md.write_text(head.rstrip("\n") + "\n" + text + ("\n## " + rest if rest else ""))
    print(text)


if __name__ == "__main__":
    sys.exit(main())
