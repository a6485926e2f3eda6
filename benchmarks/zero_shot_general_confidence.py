"""Zero-shot confidence on trees no setting was chosen on, calibration from reviews, samples.

Adds keys to ``benchmarks/results/zero_shot_general.json`` (and a section to its markdown):

* ``confidence_model``: the confidence model (:mod:`multimodal_cat.zero_shot.confidence`) fitted
  on Flipkart dev + fashion dev (equal weight per domain) for three feature sets, each with its
  label-free feed shift (ATC), scored on Flipkart test, fashion test and MWPD validation (the
  report; MWPD train was not needed to choose anything and was left out to save time). The package default is the first feature set.
* ``mwpd_validation``: the package defaults into ``mwpd/tree.csv`` (394 GS1 nodes), titles and
  titles + description + seller category: exact, top level, share at confidence >= 0.9 and the
  share of those wrong, ECE; ``before`` is the softmax probability at the Flipkart temperature
  (the confidence the package gave until now); ``batches_of_64`` predicts as ``categorize``
  does (64 products per call).
* ``flipkart_test_confidence``: the same keys on Flipkart test.
* ``calibrate_from_reviews``: MWPD validation (titles + description + seller category): a
  calibration fitted from 200 reviewed products (the first 200 ``suggest`` picks, or 200 at
  random, seed 0), then the 0.95 threshold applied to the other 2,800 rows.
* ``sample30`` and ``general40`` (``benchmarks/data/general40.csv``, written before the engine
  ran on it) into Shopify: right / acceptable / wrong, wrong at >= 0.9, absurd roots.

Usage:
    python -m benchmarks.zero_shot_general_confidence [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.fashion_model import RESULTS, environment
from benchmarks.zero_shot_benchmark import load as load_fashion
from benchmarks.zero_shot_general_eval import SAMPLE30_TRUTH, load_flipkart
from multimodal_cat.calibration import recalibrate, threshold_for_precision
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.review.selection import suggest
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.backoff import back_off
from multimodal_cat.zero_shot.calibration import expected_calibration_error
from multimodal_cat.zero_shot.confidence import (
    DEFAULT_CONFIDENCE,
    FEATURES,
    ConfidenceModel,
    confidence_features,
    shifted,
)
from multimodal_cat.zero_shot.reviewed import calibrate_from_reviews

FEATURE_SETS = {
    "logit_p": ("logit_p",),
    "logit_p+z_top+root_mass+agree": ("logit_p", "z_top", "root_mass", "agree"),
    "all": FEATURES,
}
CONFIDENCE_KEYS = (
    "confidence_run", "confidence_model", "mwpd_validation", "flipkart_test_confidence",
    "calibrate_from_reviews", "calibrate_from_reviews_flipkart_test", "sample30", "general40",
    "product_kind_head",
)  # what this module adds to zero_shot_general.json
REVIEWS = 200
TARGET = 0.95
TARGETS = (0.8, 0.9, 0.95)


def mwpd(data: Path) -> tuple[Taxonomy, pd.DataFrame]:
    """The GS1 tree of MWPD and its offers."""
    tree = pd.read_csv(data / "mwpd/tree.csv", dtype=str)
    tax = Taxonomy.from_paths(tree["path"].tolist(), ids=tree["id"].tolist(), name="mwpd")
    return tax, pd.read_csv(data / "mwpd/products.csv", dtype=str).fillna("")


def offers(rows: pd.DataFrame, full: bool) -> list:
    """Titles, or Products with description and seller category."""
    if not full:
        return rows["title"].tolist()
    return [
        Product(id=str(r.id), title=r.title, description=r.description, seller_category=r.seller_category)
        for r in rows.itertuples()
    ]


def within(zs: ZeroShotCategorizer, predicted: list[str], truth: list[str]) -> np.ndarray:
    """True where the answer is the true node or a branch above it."""
    tax = zs.taxonomy
    return np.array(
        [p in {c.id for c in tax.ancestors(t, include_self=True)} for p, t in zip(predicted, truth, strict=True)]
    )


def metrics(zs: ZeroShotCategorizer, predicted: list[str], truth: list[str], conf: np.ndarray) -> dict:
    """exact, top level, share at >= 0.9, wrong among them, ECE (right = the node or above it)."""
    tax = zs.taxonomy
    ok = within(zs, predicted, truth)
    sure = conf >= 0.9
    return {
        "n": len(truth),
        "exact": round(float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])), 4),
        "top_level": round(
            float(np.mean([tax[p].path[0] == tax[t].path[0] for p, t in zip(predicted, truth, strict=True)])), 4
        ),
        "share_at_conf_0_9": round(float(sure.mean()), 4),
        "answers_at_conf_0_9": int(sure.sum()),
        "wrong_share_at_conf_0_9": round(float(1 - ok[sure].mean()), 4) if sure.any() else None,
        "ece": round(expected_calibration_error(conf, ok), 4),
    }


def engine_features(zs: ZeroShotCategorizer, items: list, truth: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Confidence features of the package's answers, whether each is right, and the softmax
    ("before") metrics."""
    scored = zs._probabilities(items)
    view = zs.index_.view
    choices = [back_off(r, zs.index_, leaf_min=zs.leaf_min, branch_min=zs.branch_min) for r in scored.probs]
    answer_p = np.array([c.confidence for c in choices])
    feats = confidence_features(
        scored.scores, scored.probs, answer_p, zs.roots_, (scored.scores - scored.lexical).argmax(1)
    )
    predicted = [view.ids[c.position] for c in choices]
    return feats, within(zs, predicted, truth), metrics(zs, predicted, truth, answer_p)


def fit_models(dev: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, ConfidenceModel]:
    """One confidence model per feature set, fitted with equal weight per dev domain."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([f for f, _ in dev])
    y = np.concatenate([ok for _, ok in dev])
    w = np.concatenate([np.full(len(ok), len(y) / (len(dev) * len(ok))) for _, ok in dev])
    models = {}
    for name, names in FEATURE_SETS.items():
        cols = [FEATURES.index(n) for n in names]
        fit = LogisticRegression(C=1.0, max_iter=1000).fit(x[:, cols], y, sample_weight=w)
        weights = np.zeros(len(FEATURES))
        weights[cols] = fit.coef_[0]
        model = ConfidenceModel(tuple(np.round(weights, 4)), round(float(fit.intercept_[0]), 4))
        cuts = [np.quantile(model(f), 1 - ok.mean()) for f, ok in dev]
        models[name] = ConfidenceModel(model.weights, model.bias, round(float(np.mean(cuts)), 4))
    return models


def calibration_summary(model: ConfidenceModel, feats: np.ndarray, ok: np.ndarray) -> dict:
    """The model's confidence before and after the feed shift, against the truth."""
    raw = model(feats)
    shift = model.feed_shift(raw)
    out = {"accuracy": round(float(ok.mean()), 4), "estimated_accuracy": round(model.estimated_accuracy(raw), 4)}
    for name, conf in (("raw", raw), ("feed_shifted", shifted(raw, shift))):
        sure = conf >= 0.9
        out[name] = {
            "share_at_conf_0_9": round(float(sure.mean()), 4),
            "wrong_share_at_conf_0_9": round(float(1 - ok[sure].mean()), 4) if sure.any() else None,
            "ece": round(expected_calibration_error(conf, ok), 4),
        }
    out["shift"] = round(shift, 3)
    return out


def package_run(tax: Taxonomy, items: list, truth: list[str], batch: int | None = None, feed: bool = True) -> dict:
    """The package defaults as a user runs them (one call, or calls of ``batch`` products, as
    the feed job's batches); ``feed=False``: ``feed_calibration=False`` (the prior's shift only,
    no shift read from the call's own products)."""
    zs = ZeroShotCategorizer(tax, tags=False, feed_calibration=feed)
    step = batch or len(items)
    preds = [p for s in range(0, len(items), step) for p in zs.predict(items[s : s + step])]
    conf = np.array([p.confidence for p in preds])
    return metrics(zs, [p.category_id for p in preds], truth, conf)


def reviews_experiment(tax: Taxonomy, items: list, truth: list[str]) -> dict:
    """Thresholds from 200 reviewed products (suggest picks / random), applied to the rest."""
    zs = ZeroShotCategorizer(tax, tags=False, feed_calibration=False, reviewed=False)
    preds = zs.predict(items)
    raw = np.array([p.confidence for p in preds])
    ok = within(zs, [p.category_id for p in preds], truth)
    proba = zs.predict_proba(items)
    picks = {
        "suggest_first_200": suggest(proba, zs.text_vectors(items), REVIEWS),
        "random_200": np.random.default_rng(0).choice(len(items), REVIEWS, replace=False),
    }
    out = {"rows": len(items), "target_precision": TARGET}
    for name, chosen in picks.items():
        fit = calibrate_from_reviews(
            zs, [items[i] for i in chosen], [truth[i] for i in chosen], targets=TARGETS, store=False
        )
        c = fit.calibration
        rest = np.setdiff1d(np.arange(len(items)), chosen)
        conf = recalibrate(raw[rest], c.temperature, c.bias)
        entry = {
            "reviews": c.reviews,
            "reviewed_accuracy": round(c.accuracy, 4),
            "temperature": round(c.temperature, 4),
            "bias": round(c.bias, 4),
            "other_rows_ece": round(expected_calibration_error(conf, ok[rest]), 4),
        }
        for target in TARGETS:
            entry[f"target_{target}"] = _applied(c.threshold(target), conf, ok[rest])
        # what a threshold chosen on the same reviews without the rule of 30 would have claimed
        reviewed_conf = recalibrate(raw[chosen], c.temperature, c.bias)
        naive = threshold_for_precision(reviewed_conf, ok[chosen], TARGET)
        accepted = conf >= naive.value
        entry["without_the_30_review_rule"] = {
            "threshold": round(naive.value, 4),
            "reviews_at_or_above": int((reviewed_conf >= naive.value).sum()),
            "claimed_precision": round(naive.precision, 4),
            "other_rows_auto_accept_share": round(float(accepted.mean()), 4),
            "other_rows_precision": round(float(ok[rest][accepted].mean()), 4) if accepted.any() else None,
        }
        out[name] = entry
    return out


def _applied(threshold, conf: np.ndarray, ok: np.ndarray) -> dict:
    """A reviewed threshold, what it rests on, and what it does on the other rows."""
    entry = {
        "threshold": None if threshold.value is None else round(threshold.value, 4),
        "rests_on_reviews": threshold.reviews,
        "reviewed_precision": round(threshold.precision, 4),
        "reviewed_precision_95_interval": [round(x, 4) for x in threshold.interval],
        "note": threshold.note,
        "other_rows_auto_accept_share": 0.0,
        "other_rows_precision": None,
    }
    if threshold.value is not None:
        accepted = conf >= threshold.value
        entry["other_rows_auto_accept_share"] = round(float(accepted.mean()), 4)
        if accepted.any():
            entry["other_rows_precision"] = round(float(ok[accepted].mean()), 4)
    return entry


def _sample30_rows(data: Path) -> list[dict]:
    rows = pd.read_csv(data / "general/sample30.csv").fillna("")
    out = []
    for r in rows.itertuples():
        right, accepted = SAMPLE30_TRUTH[r.id]
        roots = sorted({p.split(" > ")[0] for p in (right, *accepted)})
        out.append({"id": r.id, "title": r.title, "description": r.description, "brand": r.brand,
                    "right_category": right, "accepted": list(accepted), "sensible_roots": roots})
    return out


def _general40_rows() -> list[dict]:
    rows = pd.read_csv(Path(__file__).parent / "data/general40.csv", keep_default_na=False)
    return [
        {"id": r.id, "title": r.title, "description": r.description, "brand": r.brand,
         "right_category": r.right_category, "accepted": [a for a in r.accepted.split("|") if a],
         "sensible_roots": r.sensible_roots.split("|")}
        for r in rows.itertuples()
    ]  # fmt: skip


def grade(path: str, row: dict) -> str:
    """right / acceptable (under an accepted branch, or a depth >= 2 ancestor of the right one) / wrong."""
    right = row["right_category"]
    if path == right:
        return "right"
    under = any(path == a or path.startswith(a + " > ") for a in row["accepted"])
    ancestor = right.startswith(path + " > ") and path.count(" > ") >= 1
    return "acceptable" if under or ancestor else "wrong"


def sample(rows: list[dict], product_kind: bool = True) -> dict:
    """Graded answers into Shopify with the package defaults (one call); ``product_kind=False``
    is the engine alone."""
    products = [Product(id=r["id"], title=r["title"], description=r["description"], brand=r["brand"]) for r in rows]
    preds = ZeroShotCategorizer(Taxonomy.load("shopify"), product_kind=product_kind).predict(products)
    graded = []
    for r, p in zip(rows, preds, strict=True):
        root = p.category_path.split(" > ")[0]
        graded.append({
            "id": r["id"], "title": r["title"], "predicted": p.category_path,
            "confidence": round(p.confidence, 4), "right_category": r["right_category"],
            "grade": grade(p.category_path, r), "absurd_root": root not in r["sensible_roots"],
            "warnings": p.warnings,
        })  # fmt: skip
    counts = {g: sum(x["grade"] == g for x in graded) for g in ("right", "acceptable", "wrong")}
    return {
        **counts,
        "overruled_by_product_kind": [x["id"] for x in graded if any("product-kind" in w for w in x["warnings"])],
        "wrong_at_conf_0_9": [x["id"] for x in graded if x["grade"] == "wrong" and x["confidence"] >= 0.9],
        "absurd_roots": [f"{x['id']} {x['title']!r} -> {x['predicted']}" for x in graded if x["absurd_root"]],
        "rows": graded,
    }


def markdown(r: dict) -> str:
    """The new keys as a markdown section."""
    lines = ["", "## Confidence on trees no setting was chosen on (zero_shot_general_confidence)", "",
             f"Made by `{r['command']}` at commit `{r['git_commit'][:10]}` on {r['date_utc']}.", "",
             "| rows | exact | top level | share >= 0.9 | wrong among them | ECE |", "|---|---|---|---|---|---|"]  # fmt: skip
    for key, m in [
        *[(f"MWPD validation, {k}", v) for k, v in r["mwpd_validation"].items() if isinstance(v, dict) and "exact" in v],
        *[(f"MWPD validation, {k} (64 per call)", v["batches_of_64"]) for k, v in r["mwpd_validation"].items() if isinstance(v, dict) and "batches_of_64" in v],
        *[(f"MWPD validation, {k} (before: softmax at T=0.086)", v["before"]) for k, v in r["mwpd_validation"].items() if isinstance(v, dict) and "before" in v],
        ("Flipkart test", r["flipkart_test_confidence"]),
        ("Flipkart test (before)", r["flipkart_test_confidence"]["before"]),
    ]:  # fmt: skip
        lines.append(f"| {key} | {m['exact']} | {m['top_level']} | {m['share_at_conf_0_9']} | "
                     f"{m['wrong_share_at_conf_0_9']} | {m['ece']} |")  # fmt: skip
    lines += ["", "Calibration from 200 reviews (MWPD validation, target precision 0.95, measured on the other rows):", ""]
    for name, e in [(f"{k} {n}", r[k][n]) for k in ("calibrate_from_reviews", "calibrate_from_reviews_flipkart_test")
                    for n in ("suggest_first_200", "random_200")]:
        lines.append(f"- {name}: temperature {e['temperature']}, bias {e['bias']}, other rows' ECE {e['other_rows_ece']}")
        for target in TARGETS:
            t = e[f"target_{target}"]
            lines.append(f"  - target {target}: threshold {t['threshold']} resting on {t['rests_on_reviews']} reviews "
                         f"(interval {t['reviewed_precision_95_interval']}); other rows: precision "
                         f"{t['other_rows_precision']}, auto-accepted {t['other_rows_auto_accept_share']} {t['note']}")
        n = e["without_the_30_review_rule"]
        lines.append(f"  - without the rule of 30 (0.95): threshold {n['threshold']} on {n['reviews_at_or_above']} reviews "
                     f"claims {n['claimed_precision']}; other rows: precision {n['other_rows_precision']}, "
                     f"auto-accepted {n['other_rows_auto_accept_share']}")  # fmt: skip
    for key in ("sample30", "general40"):
        s = r[key]
        for label, x in (("", s), (" (engine alone, no product-kind head)", s["engine_alone"])):
            lines.append(f"- {key}{label}: {x['right']} right / {x['acceptable']} acceptable / {x['wrong']} wrong; "
                         f"wrong at >= 0.9: {x['wrong_at_conf_0_9'] or 'none'}; absurd roots: {x['absurd_roots'] or 'none'}")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--skip-fit", action="store_true", help="leave the model fit out")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data)
    env = environment("benchmarks.zero_shot_general_confidence", encoder="minilm", seed=0)
    report: dict = {**env}
    tax_fk, fk_rows = load_flipkart(data)
    fk_titles, fk_truth = fk_rows["title"].astype(str).tolist(), fk_rows["category_id"].tolist()
    test = fk_rows["test"].to_numpy()
    tax_mw, mw_rows = mwpd(data)
    val = mw_rows[mw_rows.split == "validation"]
    if not args.skip_fit:
        tax_fa, fa_rows = load_fashion(data)
        fa_truth = [tax_fa.find(p).id for p in fa_rows["path"]]
        zs_fk, zs_fa = ZeroShotCategorizer(tax_fk, tags=False), ZeroShotCategorizer(tax_fa, tags=False)
        fk_f, fk_ok, _ = engine_features(zs_fk, fk_titles, fk_truth)
        fa_f, fa_ok, _ = engine_features(zs_fa, fa_rows["productDisplayName"].astype(str).tolist(), fa_truth)
        fa_dev = (fa_rows["id"] % 5 != 0).to_numpy()
        models = fit_models([(fk_f[~test], fk_ok[~test]), (fa_f[fa_dev], fa_ok[fa_dev])])
        zs_mw = ZeroShotCategorizer(tax_mw, tags=False)
        checks = {
            "flipkart_dev": (fk_f[~test], fk_ok[~test]), "fashion_dev": (fa_f[fa_dev], fa_ok[fa_dev]),
            "flipkart_test": (fk_f[test], fk_ok[test]), "fashion_test": (fa_f[~fa_dev], fa_ok[~fa_dev]),
        }  # fmt: skip
        for full in (False, True):
            name = f"mwpd_validation_{'title_description_seller' if full else 'titles'}"
            checks[name] = engine_features(zs_mw, offers(val, full), val["category_id"].tolist())[:2]
        report["confidence_model"] = {
            "fitted_on": "Flipkart dev + fashion dev (ids % 5 != 0), equal weight per domain",
            "package_default": {"weights": list(DEFAULT_CONFIDENCE.weights), "bias": DEFAULT_CONFIDENCE.bias,
                                "feed_threshold": DEFAULT_CONFIDENCE.feed_threshold,
                                "prior_shift": DEFAULT_CONFIDENCE.prior_shift},
            "feature_sets": {
                name: {"weights": dict(zip(FEATURES, model.weights, strict=True)), "bias": model.bias,
                       "feed_threshold": model.feed_threshold,
                       **{k: calibration_summary(model, f, ok) for k, (f, ok) in checks.items()}}
                for name, model in models.items()
            },
        }  # fmt: skip
    report["mwpd_validation"] = {"tree": {"nodes": len(tax_mw)}}
    for full in (False, True):
        name = "title_description_seller" if full else "titles"
        items, truth = offers(val, full), val["category_id"].tolist()
        entry = package_run(tax_mw, items, truth)
        entry["batches_of_64"] = package_run(tax_mw, items, truth, batch=64)
        entry["without_feed_calibration"] = package_run(tax_mw, items, truth, feed=False)
        entry["before"] = engine_features(ZeroShotCategorizer(tax_mw, tags=False), items, truth)[2]
        report["mwpd_validation"][name] = entry
    test_titles = [t for t, k in zip(fk_titles, test, strict=True) if k]
    test_truth = [t for t, k in zip(fk_truth, test, strict=True) if k]
    report["flipkart_test_confidence"] = package_run(tax_fk, test_titles, test_truth)
    report["flipkart_test_confidence"]["batches_of_64"] = package_run(tax_fk, test_titles, test_truth, batch=64)
    report["flipkart_test_confidence"]["without_feed_calibration"] = package_run(tax_fk, test_titles, test_truth, feed=False)
    report["flipkart_test_confidence"]["before"] = engine_features(
        ZeroShotCategorizer(tax_fk, tags=False), test_titles, test_truth
    )[2]
    report["calibrate_from_reviews"] = reviews_experiment(tax_mw, offers(val, True), val["category_id"].tolist())
    # the same on a tree the engine knows better (55% exact), to show thresholds being set
    report["calibrate_from_reviews_flipkart_test"] = reviews_experiment(tax_fk, test_titles, test_truth)
    from multimodal_cat.zero_shot.kind import KIND_FILE

    for key, rows in (("sample30", _sample30_rows(data)), ("general40", _general40_rows())):
        report[key] = sample(rows)
        alone = sample(rows, product_kind=False)
        report[key]["engine_alone"] = {k: v for k, v in alone.items() if k != "rows"}
    report["product_kind_head"] = {
        "file": KIND_FILE.name,
        "sha256": hashlib.sha256(KIND_FILE.read_bytes()).hexdigest() if KIND_FILE.is_file() else None,
    }
    report["load_average_end"] = list(os.getloadavg())
    path = RESULTS / "zero_shot_general.json"
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged["confidence_run"] = {k: report[k] for k in ("command", "git_commit", "date_utc", "load_average_start", "load_average_end", "torch_threads")}
    merged.update({k: v for k, v in report.items() if k not in env and k != "load_average_end"})
    path.write_text(json.dumps(merged, indent=2) + "\n")
    text = markdown(report)
    md = RESULTS / "zero_shot_general.md"
    old = md.read_text() if md.is_file() else ""
    marker = "\n## Confidence on trees no setting was chosen on"
    md.write_text(old.split(marker)[0].rstrip("\n") + "\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
