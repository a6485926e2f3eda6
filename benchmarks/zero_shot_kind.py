"""Train the shipped product-kind head (:mod:`multimodal_cat.zero_shot.kind`) and measure it.

Training rows: the labelled titles of Flipkart and fashion outside their test splits (Flipkart
rows with ``md5 % 5 != 0``, fashion ids ``% 5 != 0``; not MWPD, whose data may be used for
evaluation only, so MWPD validation is a clean check of transfer), each labelled with the Shopify
top level that its own top level (or, where the top level is mixed, its second level) maps to
by hand in :data:`TO_SHOPIFY`; rows whose category has no clear Shopify twin are left out, and
each Shopify root keeps at most :data:`CAP` rows (seeded) so apparel does not drown the rest.
The head reads the unit MiniLM vectors of the titles. Held-out
root accuracy is measured on Flipkart test and MWPD validation (mapped the same way); the
effect on answers is measured on the hand-judged products (``sample30``, ``general40``), the
engine alone against the engine with the head, into Shopify. Writes
``multimodal_cat/zero_shot/data/kind_head.npz`` and ``benchmarks/results/zero_shot_kind.json``.

Usage:
    python -m benchmarks.zero_shot_kind [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.fashion_model import RESULTS, environment
from benchmarks.zero_shot_general_eval import load_flipkart
from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.zero_shot.kind import KIND_FILE, KindHead
from multimodal_cat.zero_shot.store import encoder_digest

CAP = 3000
SEED = 0
_AA, _HG, _HW, _EL = "Apparel & Accessories", "Home & Garden", "Hardware", "Electronics"
# Source category (top level, or "top > second" where the top level is mixed) -> Shopify root;
# None: no clear twin (left out). Longest matching prefix wins.
TO_SHOPIFY: dict[str, str | None] = {
    # Flipkart
    "Clothing": _AA, "Jewellery": _AA, "Footwear": _AA, "Watches": _AA,
    "Automotive": "Vehicles & Parts", "Home Decor & Festive Needs": _HG,
    "Beauty and Personal Care": "Health & Beauty", "Kitchen & Dining": _HG, "Computers": _EL,
    "Mobiles & Accessories": _EL, "Home Furnishing": _HG,
    "Toys & School Supplies": "Toys & Games", "Toys & School Supplies > School Supplies": "Office Supplies",
    "Toys & School Supplies > Party Supplies": None, "Toys & School Supplies > Musical Instruments & Toys": None,
    "Pens & Stationery": "Office Supplies", "Baby Care": "Baby & Toddler", "Bags, Wallets & Belts": None,
    "Tools & Hardware": _HW, "Sports & Fitness": "Sporting Goods", "Furniture": "Furniture",
    "Cameras & Accessories": "Cameras & Optics", "Home Improvement": None,
    "Health & Personal Care Appliances": "Health & Beauty", "Gaming": None, "Home & Kitchen": _HG,
    "Home Entertainment": _EL, "Pet Supplies": "Animals & Pet Supplies", "eBooks": "Media",
    "Eyewear": None, "Household Supplies": _HG, "Food & Nutrition": "Food, Beverages & Tobacco",
    "Wearable Smart Devices": _EL, "Automation & Robotics": None,
    # MWPD (GS1 segments)
    "Personal Accessories": _AA, "Household/Office Furniture/Furnishings": None, "Computing": _EL,
    "Audio Visual/Photography": _EL, "Sports Equipment": "Sporting Goods",
    "Pet Care/Food": "Animals & Pet Supplies", "Kitchen Merchandise": _HG,
    "Food/Beverage/Tobacco": "Food, Beverages & Tobacco", "Healthcare": "Health & Beauty",
    "Electrical Supplies": _HW, "Toys/Games": "Toys & Games", "Textual/Printed/Reference Materials": "Media",
    "Beauty/Personal Care/Hygiene": "Health & Beauty", "Plumbing/Heating/Ventilation/Air Conditioning": _HW,
    "Stationery/Office Machinery/Occasion Supplies": "Office Supplies", "Building Products": _HW,
    "Communications": _EL, "Arts/Crafts/Needlework": "Arts & Entertainment",
    "Cleaning/Hygiene Products": _HG, "Lawn/Garden Supplies": _HG, "Live Animals": None, "Music": None,
    "Safety/Security/Surveillance": None, "Home Appliances": _HG,
    "Camping": "Sporting Goods", "Horticulture Plants": _HG, "Storage/Haulage Containers": None,
    "Fuels/Gases": None, "Tool Storage/Workshop Aids": _HW, "Lubricants": _HW,
    # fashion (masterCategory > subCategory)
    "Apparel": _AA, "Accessories": _AA, "Accessories > Bags": None, "Personal Care": "Health & Beauty",
    "Free Items": None, "Sporting Goods": "Sporting Goods",
}  # fmt: skip


def shopify_root(path: str) -> str | None:
    """The Shopify root of a source path by :data:`TO_SHOPIFY` (longest prefix), or ``None``."""
    parts = path.split(" > ")
    for depth in range(len(parts), 0, -1):
        key = " > ".join(parts[:depth])
        if key in TO_SHOPIFY:
            return TO_SHOPIFY[key]
    head = parts[0]
    for key, root in TO_SHOPIFY.items():  # GS1 names with odd characters ("Safety/Protection ? DIY")
        if key.split(" > ")[0] == head:
            return root
    if head.startswith(("Tools/Equipment", "Safety/Protection")):
        return _HW
    return None


def labelled(data: Path) -> dict[str, tuple[list[str], list[str | None]]]:
    """Titles and mapped Shopify roots: training rows and held-out rows by source."""
    _, fk = load_flipkart(data)
    fa = pd.read_csv(data / "fashion/styles_with_images.csv").dropna(subset=["productDisplayName"])
    fa_path = fa["masterCategory"].astype(str) + " > " + fa["subCategory"].astype(str)
    mw = pd.read_csv(data / "mwpd/products.csv", dtype=str).fillna("")
    train_mw, val_mw = mw[mw.split == "train"], mw[mw.split == "validation"]

    def pairs(titles, paths):
        return [str(t) for t in titles], [shopify_root(str(p)) for p in paths]

    return {
        "flipkart_dev": pairs(fk.title[~fk.test], fk.category_path[~fk.test]),
        "fashion_dev": pairs(fa.productDisplayName[fa.id % 5 != 0], fa_path[fa.id % 5 != 0]),
        "mwpd_train": pairs(train_mw.title, train_mw.category_path),
        "flipkart_test": pairs(fk.title[fk.test], fk.category_path[fk.test]),
        "mwpd_validation": pairs(val_mw.title, val_mw.category_path),
    }


def title_vectors(zs: ZeroShotCategorizer, titles: list[str]) -> np.ndarray:
    """Unit title vectors, through the embedding cache (what the predictor gives the head)."""
    from multimodal_cat.encoders._arrays import l2_normalize

    return l2_normalize(zs._embed(titles))


def training_rows(sets: dict) -> tuple[list[str], np.ndarray]:
    """The training sources' mapped titles, at most :data:`CAP` per root (seeded), and their roots."""
    titles, roots = [], []
    for name in ("flipkart_dev", "fashion_dev"):
        t, r = sets[name]
        keep = [i for i, x in enumerate(r) if x]
        titles += [t[i] for i in keep]
        roots += [r[i] for i in keep]
    rng = np.random.default_rng(SEED)
    roots_arr = np.array(roots)
    chosen = np.concatenate([
        rng.permutation(np.flatnonzero(roots_arr == r))[:CAP] for r in sorted(set(roots))
    ])  # fmt: skip
    return [titles[i] for i in chosen], roots_arr[chosen]


def train_head(zs: ZeroShotCategorizer, sets: dict) -> tuple[KindHead, dict]:
    """Fit the head on the training sources (capped per root); held-out root accuracy."""
    from sklearn.linear_model import LogisticRegression

    titles, roots_arr = training_rows(sets)
    vectors = title_vectors(zs, titles)
    fit = LogisticRegression(C=10.0, max_iter=500).fit(vectors, roots_arr)
    head = KindHead(
        fit.coef_.astype(np.float32), fit.intercept_.astype(np.float32), [str(c) for c in fit.classes_],
        str(zs.encoder_.key), str(encoder_digest(zs.encoder_)),
    )  # fmt: skip
    counts = {r: int((roots_arr == r).sum()) for r in head.roots}
    held = {}
    for name in ("flipkart_test", "mwpd_validation"):
        t, r = sets[name]
        keep = [i for i, x in enumerate(r) if x]
        probs = head.probabilities(title_vectors(zs, [t[i] for i in keep]))
        guess = np.array(head.roots)[probs.argmax(1)]
        truth = np.array([r[i] for i in keep])
        sure = probs.max(1) >= 0.8
        held[name] = {
            "rows": len(keep),
            "root_accuracy": round(float((guess == truth).mean()), 4),
            "share_at_0_8": round(float(sure.mean()), 4),
            "accuracy_at_0_8": round(float((guess == truth)[sure].mean()), 4),
        }
    return head, {"training_rows_per_root": counts, "held_out": held}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    torch.set_num_threads(2)
    env = environment("benchmarks.zero_shot_kind", encoder="minilm", seed=SEED)
    zs = ZeroShotCategorizer(Taxonomy.from_paths(["a > b"]), tags=False)
    zs._prepare()
    head, report = train_head(zs, labelled(Path(args.data)))
    path = head.save(KIND_FILE)
    report = {**env, "head_file": str(path.name), "head_bytes": path.stat().st_size, **report,
              "load_average_end": list(os.getloadavg())}  # fmt: skip
    (RESULTS / "zero_shot_kind.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
