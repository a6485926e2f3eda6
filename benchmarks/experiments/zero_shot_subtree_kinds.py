"""Does the zero-shot score keep products out of absurd branches if it also reads what kinds
of things live under each ancestor? (issue 26)

Today's score reads each ancestor by its *name* (``ancestors``: mean cosine to the ancestor
names). Candidate: add ``w x`` mean cosine to the ancestors' *subtree centroids* (the
normalised mean of the name vectors of every category below an ancestor), so that "Toys &
Games" speaks with the voice of its building sets and toy cars, not only its two words. The
term is linear in the product vector, so it would fold into the shipped category matrix.
Scored with the package predictor (defaults otherwise, engine alone: no product-kind head) on
2,000 Flipkart and 2,000 fashion dev rows (seed 0; the rows the defaults are chosen on) and on
the hand-judged ``sample30`` and ``general40`` into Shopify (right / acceptable / wrong, absurd
roots).

Usage::

    python -m benchmarks.experiments.zero_shot_subtree_kinds [--weights 0 0.25 0.5 1 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import multimodal_cat.zero_shot.store as store
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results
from benchmarks.zero_shot_benchmark import load as load_fashion
from benchmarks.zero_shot_general_confidence import _general40_rows, _sample30_rows, sample
from benchmarks.zero_shot_general_eval import load_flipkart
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.search import category_matrix

NAME = "zero_shot_subtree_kinds"
DEV_ROWS, SEED = 2000, 0


def subtree_centroids(view) -> np.ndarray:
    """(nodes, dim) unit mean of the name vectors at or below each node."""
    names = np.asarray(view.name_emb, np.float32)
    out = np.zeros_like(names)
    for position in range(len(view)):
        for ancestor in view.ancestors(position):
            out[ancestor] += names[position]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def with_subtrees(weight: float):
    """:func:`category_matrix` plus ``weight`` x the mean of the ancestors' centroids (a root
    its own), the candidate scoring."""

    def matrix(view, weights) -> np.ndarray:
        base = category_matrix(view, weights)
        if not weight:
            return base
        centroids = subtree_centroids(view)
        above = np.stack([centroids[view.ancestors(p)[1:] or [p]].mean(axis=0) for p in range(len(view))])
        return (base + weight * above).astype(np.float32)

    return matrix


def accuracy(tax: Taxonomy, titles: list[str], truth: list[str]) -> dict:
    """Exact and top-level accuracy of the package predictor on ``titles``."""
    preds = ZeroShotCategorizer(tax, tags=False).predict(titles)
    roots = [tax[t].full_path.split(" > ")[0] for t in truth]
    return {
        "exact": round(float(np.mean([p.category_id == t for p, t in zip(preds, truth, strict=True)])), 4),
        "top_level": round(float(np.mean([p.category_path.split(" > ")[0] == r for p, r in zip(preds, roots, strict=True)])), 4),
    }  # fmt: skip


def run(weight: float, dev: dict, data: Path) -> dict:
    """Every figure with the candidate term at ``weight`` (0: today's score)."""
    store.category_matrix, store.load_shipped = with_subtrees(weight), lambda *a, **k: None
    out: dict = {name: accuracy(*rows) for name, rows in dev.items()}
    for key, rows in (("sample30", _sample30_rows(data)), ("general40", _general40_rows())):
        judged = sample(rows, product_kind=False)
        out[key] = {k: judged[k] for k in ("right", "acceptable", "wrong", "wrong_at_conf_0_9", "absurd_roots")}
    return out


def dev_rows(data: Path) -> dict:
    """(tree, titles, true ids) of the Flipkart and fashion dev samples."""
    tax, rows = load_flipkart(data)
    fk = rows[~rows["test"]].sample(DEV_ROWS, random_state=SEED)
    fa_tax, fa_rows = load_fashion(data)
    fa = fa_rows[fa_rows["id"] % 5 != 0].sample(DEV_ROWS, random_state=SEED)
    return {
        "flipkart_dev": (tax, fk["title"].astype(str).tolist(), fk["category_id"].tolist()),
        "fashion_dev": (fa_tax, fa["productDisplayName"].astype(str).tolist(), [fa_tax.find(p).id for p in fa["path"]]),
    }  # fmt: skip


def markdown(result: dict) -> str:
    lines = ["# Subtree centroids in the zero-shot score (engine alone, into Shopify for the judged samples)", "",
             f"Made by {result['made_by']}.", "",
             "| weight | Flipkart dev exact / top | fashion dev exact / top | sample30 R/A/W | absurd | general40 R/A/W | absurd |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for weight, r in result["weights"].items():
        f, a, s, g = r["flipkart_dev"], r["fashion_dev"], r["sample30"], r["general40"]
        lines.append(f"| {weight} | {f['exact']} / {f['top_level']} | {a['exact']} / {a['top_level']} | "
                     f"{s['right']}/{s['acceptable']}/{s['wrong']} | {len(s['absurd_roots'])} | "
                     f"{g['right']}/{g['acceptable']}/{g['wrong']} | {len(g['absurd_roots'])} |")  # fmt: skip
    lines += ["", "Absurd roots per weight:", ""]
    for weight, r in result["weights"].items():
        lines.append(f"- {weight}: " + "; ".join(r["sample30"]["absurd_roots"] + r["general40"]["absurd_roots"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    env = environment("benchmarks.experiments.zero_shot_subtree_kinds", encoder="minilm", seed=SEED)
    dev = dev_rows(args.data)
    results = {}
    for weight in args.weights:
        results[f"{weight:g}"] = run(weight, dev, args.data)
        print(weight, json.dumps(results[f"{weight:g}"])[:300], flush=True)
    result = {"environment": env, "made_by": made_by(env), "weights": results}
    write_results(RESULTS / NAME, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
