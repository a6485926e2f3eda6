"""Zero-shot categorization of general merchandise: Flipkart titles in Flipkart's own tree.

Protocol (``../shared/data/flipkart/README``): 12,409 titles, 1,093 nodes; test = titles whose
``int(md5(title), 16) % 5 == 0`` (2,563 rows). Every setting is chosen on the other rows
(the *dev* rows): the score weights by a grid on Flipkart dev + fashion dev (fashion: ids
% 5 != 0; one set of defaults for every domain), the softmax temperature by NLL on Flipkart
dev, the back-off thresholds and the adaptation on Flipkart dev. The test rows are scored
once, through ``ZeroShotCategorizer.predict`` with the package defaults, next to plain
MiniLM cosine baselines, the previous library formula, and TF-IDF + logistic regression
trained on the dev rows (supervised, for scale). Also: the 30 hand-written products of
``general/sample30.csv`` into Shopify, graded against the categories written in
:data:`~benchmarks.zero_shot_general_eval.SAMPLE30_TRUTH`.

Usage:
    python -m benchmarks.zero_shot_general [--data ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.fashion_model import RESULTS, environment, write_results
from benchmarks.zero_shot_benchmark import load as load_fashion
from benchmarks.zero_shot_general_confidence import CONFIDENCE_KEYS
from benchmarks.zero_shot_general_eval import (
    HEADS,
    SAMPLE30_TRUTH,
    components,
    grade,
    load_flipkart,
    node_metrics,
    within,
)
from benchmarks.zero_shot_general_report import markdown, reliability_png
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.products import Product
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.adapt import smooth_over_neighbours
from multimodal_cat.zero_shot.backoff import back_off
from multimodal_cat.zero_shot.calibration import DEFAULT_TEMPERATURE, fit_temperature, softmax
from multimodal_cat.zero_shot.search import CategoryIndex, ScoreWeights, category_matrix
from multimodal_cat.zero_shot.store import embed_tree

GRID = {
    "path": [0.5, 0.75, 1.0],
    "name": [0.25, 0.5, 0.75],
    "ancestors": [0.0, 0.25, 0.5],
    "overlap": [0.2, 0.4, 0.6],
    "phrase": [0.0, 0.1, 0.2],
    "head": list(HEADS),
    "hub": [0.0, 0.25],
}
BACKOFF_GRID = {"leaf_min": [0.0, 0.3, 0.4, 0.5, 0.6], "branch_min": [0.7, 0.8, 0.9]}
ADAPT_GRID = {"k": [10, 20], "alpha": [0.3, 0.5]}


def domain(tax: Taxonomy, titles: list[str], zs: ZeroShotCategorizer):
    """(index with embeddings, score components) of one domain's titles."""
    view = embed_tree(tax, zs.encoder_)
    index = CategoryIndex(view, "leaves", category_matrix(view, zs.weights))
    return index, components(index, titles, zs._embed)


def leaf_columns(index: CategoryIndex, ids: list[str]) -> np.ndarray:
    """Candidate column of each true id (-1 when the truth is not a candidate leaf)."""
    col = {c: j for j, c in enumerate(index.ids)}
    return np.array([col.get(i, -1) for i in ids])


def choose_weights(fk, fk_y, fk_dev, fa, fa_y, fa_dev) -> tuple[dict, list]:
    """Coordinate ascent over :data:`GRID` from the package defaults (two sweeps), on the
    mean of Flipkart dev exact and fashion dev leaf accuracy; returns the best and its trail."""

    def objective(values: dict) -> tuple[float, float, float]:
        w = ScoreWeights(**values)
        a = float((fk.scores(w, fk_dev).argmax(1) == fk_y[fk_dev]).mean())
        b = float((fa.scores(w, fa_dev).argmax(1) == fa_y[fa_dev]).mean())
        return round((a + b) / 2, 4), round(a, 4), round(b, 4)

    best = {k: getattr(ScoreWeights(), k) for k in GRID}
    best_score = objective(best)
    trail = [(best_score, dict(best))]
    for _ in range(2):
        for key, values in GRID.items():
            for value in values:
                trial = {**best, key: value}
                if value == best[key]:
                    continue
                score = objective(trial)
                if score[0] > best_score[0]:
                    best, best_score = trial, score
                    trail.append((score, dict(trial)))
    return best, trail


def backed_off(
    probs: np.ndarray, index: CategoryIndex, **kw: float
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted view positions and confidences after back-off, row by row."""
    choices = [back_off(row, index, **kw) for row in probs]
    return np.array([c.position for c in choices]), np.array([c.confidence for c in choices])


def evaluate_probs(probs, index, true_pos, **kw) -> dict:
    pred, conf = backed_off(probs, index, **kw)
    return node_metrics(pred, true_pos, index.view.parents, conf)


def tfidf_baseline(train_titles, train_y, test_titles) -> np.ndarray:
    """TF-IDF (words 1-2 + char 2-5) + logistic regression, trained on the dev rows."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    word = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
    x = hstack([word.fit_transform(train_titles), char.fit_transform(train_titles)]).tocsr()
    clf = LogisticRegression(C=20, max_iter=200, random_state=0).fit(x, train_y)
    xt = hstack([word.transform(test_titles), char.transform(test_titles)]).tocsr()
    return clf.predict(xt)


def sample30(data: Path) -> dict:
    """The 30 hand-written products into Shopify with the package defaults, graded."""
    rows = pd.read_csv(data / "general/sample30.csv").fillna("")
    products = [
        Product(id=r.id, title=r.title, description=r.description, brand=r.brand)
        for r in rows.itertuples()
    ]
    zs = ZeroShotCategorizer(Taxonomy.load("shopify"))
    start = time.perf_counter()
    preds = zs.predict(products)
    seconds = time.perf_counter() - start
    graded = []
    for p, pred in zip(products, preds, strict=True):
        verdict = grade(p.id, pred.category_path)
        graded.append(
            {
                "id": p.id,
                "title": p.title,
                "predicted": pred.category_path,
                "confidence": round(pred.confidence, 4),
                "right_category": SAMPLE30_TRUTH[p.id][0],
                "grade": verdict,
                "backed_off": bool(pred.warnings),
                "tags": [f"{t.attribute}={t.value}:{t.score}" for t in pred.tags],
            }
        )
    counts = {g: sum(r["grade"] == g for r in graded) for g in ("right", "acceptable", "wrong")}
    sure_wrong = [r["id"] for r in graded if r["grade"] == "wrong" and r["confidence"] >= 0.9]
    return {
        **counts,
        "right_or_acceptable": counts["right"] + counts["acceptable"],
        "wrong_with_confidence_0_9": sure_wrong,
        "with_tags": sum(bool(r["tags"]) for r in graded),
        "predict_s": round(seconds, 2),
        "rows": graded,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument(
        "--out", default=None, help="output stem (default results/zero_shot_general)"
    )
    parser.add_argument(
        "--skip-tfidf", action="store_true", help="leave the supervised baseline out"
    )
    parser.add_argument("--skip-sample30", action="store_true", help="leave sample30 out")
    args = parser.parse_args()
    data = Path(args.data)
    env = environment("benchmarks.zero_shot_general", encoder="minilm", seed=0)
    zs = ZeroShotCategorizer(Taxonomy.from_paths(["a > b"]), "minilm")
    zs._prepare()

    tax, rows = load_flipkart(data)
    titles = rows["title"].astype(str).tolist()
    test, dev = rows["test"].to_numpy(), ~rows["test"].to_numpy()
    fk_index, fk = domain(tax, titles, zs)
    fk_y = leaf_columns(fk_index, rows["category_id"].tolist())
    fk_pos = np.array([fk_index.view.ids.index(i) for i in rows["category_id"]])
    fa_tax, fa_rows = load_fashion(data)
    fa_titles = fa_rows["productDisplayName"].astype(str).tolist()
    fa_index, fa = domain(fa_tax, fa_titles, zs)
    fa_y = leaf_columns(fa_index, [fa_tax.find(p).id for p in fa_rows["path"]])
    fa_dev = (fa_rows["id"] % 5 != 0).to_numpy()

    chosen, trail = choose_weights(fk, fk_y, dev & (fk_y >= 0), fa, fa_y, fa_dev)
    w = ScoreWeights()
    defaults = {k: getattr(w, k) for k in GRID}
    scores_dev = fk.scores(w, dev)
    fit_rows = dev & (fk_y >= 0)
    temperature = fit_temperature(fk.scores(w, fit_rows), fk_y[fit_rows])
    probs_dev = softmax(scores_dev, DEFAULT_TEMPERATURE)
    backoff_table = []
    fa_probs_dev = softmax(fa.scores(w, fa_dev), DEFAULT_TEMPERATURE)
    fa_true_dev = np.array(fa_index.positions)[fa_y[fa_dev]]
    for leaf_min, branch_min in itertools.product(*BACKOFF_GRID.values()):
        kw = {"leaf_min": leaf_min, "branch_min": branch_min}
        m = evaluate_probs(probs_dev, fk_index, fk_pos[dev], **kw)
        f = evaluate_probs(fa_probs_dev, fa_index, fa_true_dev, **kw)
        objective = round((m["hier_f1"] + f["exact"]) / 2, 4)
        backoff_table.append(
            {**kw, "objective": objective, "flipkart": m, "fashion_exact": f["exact"]}
        )
    backoff_choice = max(backoff_table, key=lambda r: r["objective"])
    adapt_table = []
    vec_dev = zs.text_vectors([t for t, d in zip(titles, dev, strict=True) if d])
    for k, alpha in itertools.product(*ADAPT_GRID.values()):
        q = smooth_over_neighbours(probs_dev, vec_dev, k=k, alpha=alpha)
        adapt_table.append({"k": k, "alpha": alpha, **evaluate_probs(q, fk_index, fk_pos[dev])})

    # Test: the package predictor, as a user runs it (defaults), then variants.
    predictor = ZeroShotCategorizer(tax)
    test_titles = [t for t, k in zip(titles, test, strict=True) if k]
    start = time.perf_counter()
    preds = predictor.predict(test_titles)
    predict_s = time.perf_counter() - start
    view_pos = {c: i for i, c in enumerate(fk_index.view.ids)}
    pred_pos = np.array([view_pos[p.category_id] for p in preds])
    conf = np.array([p.confidence for p in preds])
    true_test = fk_pos[test]
    results = {"package_default": node_metrics(pred_pos, true_test, fk_index.view.parents, conf)}
    probs_test = predictor.predict_proba(test_titles)
    results["no_back_off"] = evaluate_probs(probs_test, fk_index, true_test, leaf_min=0.0)
    adapt = ZeroShotCategorizer(tax, adapt=True)
    results["adapt_on_test_feed"] = evaluate_probs(
        adapt.predict_proba(test_titles), fk_index, true_test
    )
    leaves = np.array(fk_index.positions)
    for name, s in {
        "cosine_full_path": fk.path[0.0][test],
        "cosine_leaf_name": fk.name[0.0][test],
        "previous_library_formula": fk.old_library[test],
    }.items():
        p = softmax(s, 0.05)
        results[name] = node_metrics(
            leaves[p.argmax(1)], true_test, fk_index.view.parents, p.max(1)
        )
    if not args.skip_tfidf:
        start = time.perf_counter()
        sup = tfidf_baseline(
            [t for t, d in zip(titles, dev, strict=True) if d], fk_pos[dev], test_titles
        )
        results["supervised_tfidf_logreg"] = node_metrics(sup, true_test, fk_index.view.parents)
        results["supervised_tfidf_logreg"]["fit_s"] = round(time.perf_counter() - start, 1)

    fa_test = ~fa_dev
    fa_probs = softmax(fa.scores(w, fa_test), DEFAULT_TEMPERATURE)
    fashion = evaluate_probs(fa_probs, fa_index, np.array(fa_index.positions)[fa_y[fa_test]])
    png = reliability_png(
        RESULTS / "zero_shot_general_reliability.png",
        conf,
        within(pred_pos, true_test, fk_index.view.parents),
    )
    report = {
        "benchmark": "zero-shot general merchandise (Flipkart titles, Flipkart tree)",
        **env,
        "load_average_end": list(os.getloadavg()),
        "rows": {"dev": int(dev.sum()), "test": int(test.sum())},
        "tree": {"nodes": len(tax), "leaves": len(fk_index)},
        "selection": "weights: grid on Flipkart dev + fashion dev; temperature, back-off, "
        "adaptation: Flipkart dev; the test rows were scored once",
        "package_defaults": {**asdict(w), "temperature": DEFAULT_TEMPERATURE},
        "grid_choice": chosen,
        "grid_choice_is_package_default": chosen == defaults,
        "coordinate_ascent_trail": trail,
        "temperature_fitted_on_dev": round(temperature, 4),
        "dev": {
            "package_default": evaluate_probs(
                probs_dev,
                fk_index,
                fk_pos[dev],
                leaf_min=predictor.leaf_min,
                branch_min=predictor.branch_min,
            ),
            "back_off_grid": backoff_table,
            "back_off_choice (mean of Flipkart hier F1 and fashion exact)": {
                k: backoff_choice[k] for k in ("leaf_min", "branch_min")
            },
            "adapt_grid": adapt_table,
        },
        "flipkart_test": results["package_default"],
        "flipkart_test_variants": results,
        "fashion_test_calibration": fashion,
        "reliability_png": str(png.relative_to(RESULTS.parent.parent)),
        "timings": {
            "predict_test_s": round(predict_s, 2),
            "titles_per_s": round(len(test_titles) / predict_s, 1),
        },
        "sample30_shopify": None if args.skip_sample30 else sample30(data),
    }
    stem = Path(args.out) if args.out else RESULTS / "zero_shot_general"
    report.update(kept_confidence_keys(stem.with_suffix(".json")))
    write_results(stem, report, markdown(report))
    return 0


def kept_confidence_keys(path: Path) -> dict:
    """The keys ``benchmarks/zero_shot_general_confidence.py`` wrote into the same file (this
    run does not remake them; run that module after this one to refresh them)."""
    import json

    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    return {k: old[k] for k in CONFIDENCE_KEYS if k in old}


if __name__ == "__main__":
    sys.exit(main())
