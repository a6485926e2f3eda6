"""Does the product-kind head know more kinds when the taxonomies' own category names join its
training titles?

The shipped head (``benchmarks/zero_shot_kind.py``) learns Shopify roots from the labelled titles
of Flipkart and fashion, which hold almost no food, books or pet products (2, 12 and 12 rows),
and the engine still sends a honey jar to Honey Jars and a boxed set of novels to Book Covers.
Candidate: add every Shopify and Google category name whose root is unambiguous (the same name
under one root only; roots Bundles, Gift Cards, Product Add-Ons, Services and Uncategorized left
out) as a training row labelled with its root. Compared with the shipped recipe on held-out root
accuracy (Flipkart test, MWPD validation) and on the hand-judged products (``sample30``,
``general40``) into Shopify. The shipped head file is not touched.

Usage::

    python -m benchmarks.experiments.zero_shot_kind_names [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

import benchmarks.zero_shot_kind as shipped
import multimodal_cat.predictors.zero_shot as engine
from benchmarks.fashion_model import RESULTS, environment, made_by, write_results
from benchmarks.zero_shot_general_confidence import _general40_rows, _sample30_rows, sample
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.kind import KindHead, load_kind_head
from multimodal_cat.zero_shot.store import encoder_digest

META_ROOTS = {"Bundles", "Gift Cards", "Product Add-Ons", "Services", "Uncategorized"}
NAME = "zero_shot_kind_names"


def name_rows() -> tuple[list[str], list[str]]:
    """Category names of Shopify and Google under exactly one (non-meta) root, with that root."""
    roots: dict[str, set[str]] = collections.defaultdict(set)
    for tree in ("shopify", "google"):
        taxonomy = Taxonomy.load(tree)
        for node_id in taxonomy.ids():
            node = taxonomy[node_id]
            root = node.full_path.split(" > ")[0]
            if node.full_path != root and root not in META_ROOTS:
                roots[node.name.strip()].add(root)
    names = sorted(n for n, r in roots.items() if len(r) == 1)
    return names, [next(iter(roots[n])) for n in names]


def fit(zs: ZeroShotCategorizer, sets: dict, with_names: bool) -> tuple[KindHead, dict]:
    """The shipped recipe (titles capped per root), optionally with the name rows added."""
    from sklearn.linear_model import LogisticRegression

    titles, y = shipped.training_rows(sets)
    x = shipped.title_vectors(zs, titles)
    if with_names:
        names, name_roots = name_rows()
        x, y = np.vstack([x, shipped.title_vectors(zs, names)]), np.concatenate([y, name_roots])
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, y)
    head = KindHead(model.coef_.astype(np.float32), model.intercept_.astype(np.float32),
                    [str(c) for c in model.classes_], str(zs.encoder_.key), str(encoder_digest(zs.encoder_)))  # fmt: skip
    return head, {"training_rows": len(y), "held_out": held_out(zs, head, sets)}


def held_out(zs: ZeroShotCategorizer, head: KindHead, sets: dict) -> dict:
    """Root accuracy (all rows, and rows the head is >= 0.8 sure of) on the held-out sources."""
    out = {}
    for name in ("flipkart_test", "mwpd_validation"):
        t, r = sets[name]
        keep = [i for i, x in enumerate(r) if x]
        probs = head.probabilities(shipped.title_vectors(zs, [t[i] for i in keep]))
        right = np.array(head.roots)[probs.argmax(1)] == np.array([r[i] for i in keep])
        sure = probs.max(1) >= 0.8
        out[name] = {"rows": len(keep), "root_accuracy": round(float(right.mean()), 4),
                     "share_at_0_8": round(float(sure.mean()), 4), "accuracy_at_0_8": round(float(right[sure].mean()), 4)}  # fmt: skip
    return out


def judged(head_file: Path, data: Path) -> dict:
    """sample30 and general40 into Shopify with the engine using ``head_file``."""
    original = engine.load_kind_head
    engine.load_kind_head = lambda encoder: load_kind_head(encoder, head_file)
    try:
        out = {}
        for key, rows in (("sample30", _sample30_rows(data)), ("general40", _general40_rows())):
            out[key] = {k: v for k, v in sample(rows).items() if k != "rows"}
        return out
    finally:
        engine.load_kind_head = original


def markdown(result: dict) -> str:
    lines = ["# Product-kind head with the taxonomies' category names as training rows", "",
             f"Made by {result['made_by']}.", "",
             "| head | Flipkart test root acc | MWPD validation root acc | sample30 R/A/W | absurd | general40 R/A/W | absurd |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for key, r in result["heads"].items():
        s, g = r["sample30"], r["general40"]
        lines.append(f"| {key} | {r['held_out']['flipkart_test']['root_accuracy']} | "
                     f"{r['held_out']['mwpd_validation']['root_accuracy']} | {s['right']}/{s['acceptable']}/{s['wrong']} | "
                     f"{len(s['absurd_roots'])} | {g['right']}/{g['acceptable']}/{g['wrong']} | {len(g['absurd_roots'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    env = environment("benchmarks.experiments.zero_shot_kind_names", encoder="minilm", seed=shipped.SEED)
    zs = ZeroShotCategorizer(Taxonomy.from_paths(["a > b"]), tags=False)
    zs._prepare()
    sets = shipped.labelled(args.data)
    heads = {}
    with tempfile.TemporaryDirectory() as folder:
        for key, with_names in (("shipped recipe", False), ("with category names", True)):
            head, report = fit(zs, sets, with_names)
            path = head.save(Path(folder) / f"{with_names}.npz")
            heads[key] = {**report, **judged(path, args.data)}
            print(key, json.dumps(heads[key]), flush=True)
    result = {"environment": env, "made_by": made_by(env), "heads": heads}
    write_results(RESULTS / NAME, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
