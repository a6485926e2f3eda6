"""Pieces of ``benchmarks/zero_shot_general.py``: data, score components, metrics, sample30 truth.

Score components are computed once per domain (cosines to paths, names and ancestor names,
lexical overlap and phrase matches, for a few head-phrase shares), so a grid over the score
weights is a few weighted sums in numpy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal_cat.encoders._arrays import l2_normalize
from multimodal_cat.taxonomy import Taxonomy
from multimodal_cat.training.metrics import hierarchical_prf
from multimodal_cat.zero_shot.calibration import expected_calibration_error
from multimodal_cat.zero_shot.product_text import product_texts
from multimodal_cat.zero_shot.search import (
    CategoryIndex,
    ScoreWeights,
    hub_scores,
    text_vectors,
)

HEADS = (0.0, 0.25, 0.5)


def md5_test(title: str) -> bool:
    """The Flipkart protocol's test rule: ``int(md5(title), 16) % 5 == 0``."""
    return int(hashlib.md5(title.encode("utf-8")).hexdigest(), 16) % 5 == 0


def load_flipkart(data: Path) -> tuple[Taxonomy, pd.DataFrame]:
    """Flipkart's tree (ids from tree.csv) and its products with ``category_id`` and ``test``."""
    tree = pd.read_csv(data / "flipkart/tree.csv")
    tax = Taxonomy.from_paths(tree["path"].tolist(), ids=tree["id"].tolist(), name="flipkart")
    rows = pd.read_csv(data / "flipkart/products.csv")
    ids = dict(zip(tree["path"], tree["id"], strict=True))
    rows["category_id"] = rows["category_path"].map(ids)
    rows["test"] = rows["title"].astype(str).map(md5_test)
    return tax, rows


@dataclass
class Components:
    """Score terms (rows x candidate columns) of one domain, before weighting."""

    path: dict[float, np.ndarray]  # head share -> cos(text, path)
    name: dict[float, np.ndarray]
    ancestors: dict[float, np.ndarray]
    overlap: np.ndarray
    phrase: np.ndarray
    old_library: np.ndarray  # main@5820049's formula (name + .75 parent + .25 root + .3 lexical)

    def scores(self, w: ScoreWeights, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        h = w.head
        cos = (
            w.path * self.path[h][rows]
            + w.name * self.name[h][rows]
            + w.ancestors * self.ancestors[h][rows]
        )
        out = cos + w.overlap * self.overlap[rows] + w.phrase * self.phrase[rows]
        if w.hub:  # CSLS with the scored rows as the reference feed
            out -= w.hub * hub_scores(cos, w.hub_k)
        return out


def components(index: CategoryIndex, titles: list[str], embed) -> Components:
    """All score terms for ``titles`` against ``index`` (a view with name/path embeddings)."""
    view = index.view
    cols = index.positions
    above = np.stack(
        [view.name_emb[view.ancestors(p)[1:] or [p]].mean(axis=0) for p in range(len(view))]
    )
    texts = product_texts(titles)
    path, name, anc = {}, {}, {}
    for h in HEADS:
        vec = text_vectors(texts, embed, ScoreWeights(head=h))
        path[h] = vec @ view.path_emb[cols].T
        name[h] = vec @ view.name_emb[cols].T
        anc[h] = vec @ above[cols].T
    title_vec = l2_normalize(embed(titles))
    parent = [view.parents[p] if view.parents[p] >= 0 else p for p in cols]
    root = [view.ancestors(p)[-1] for p in cols]
    old = title_vec @ (
        view.name_emb[cols] + 0.75 * view.name_emb[parent] + 0.25 * view.name_emb[root]
    ).T + 0.3 * index.phrases.matches(titles)
    return Components(
        path=path,
        name=name,
        ancestors=anc,
        overlap=index.overlap.scores([t.lexical for t in texts]),
        phrase=index.phrases.matches([t.lexical for t in texts]),
        old_library=old,
    )


def within(pred: np.ndarray, true: np.ndarray, parents: list[int]) -> np.ndarray:
    """True where the predicted node is the true node or one of its ancestors."""

    def chain(p: int) -> set[int]:
        out = {p}
        while parents[p] >= 0:
            p = parents[p]
            out.add(p)
        return out

    return np.array([a in chain(b) for a, b in zip(pred, true, strict=True)], dtype=bool)


def node_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    parents: list[int],
    confidence: np.ndarray | None = None,
) -> dict[str, float]:
    """exact, top_level, hier_f1 (node positions), and with ``confidence``: precision and share
    at confidence >= 0.9 and ECE (10 bins).

    ``exact`` is strict (a backed-off branch is not the true node). For the confidence columns
    a prediction is right when the true node is the predicted one or lies under it: a
    backed-off branch's confidence is the probability that the product is in that branch.
    ``ece_strict`` counts backed-off rows as wrong instead.
    """
    pred, true = np.asarray(pred), np.asarray(true)

    def root(p: int) -> int:
        while parents[p] >= 0:
            p = parents[p]
        return p

    ok = pred == true
    in_branch = within(pred, true, parents)
    out = {
        "n": int(len(true)),
        "exact": round(float(ok.mean()), 4),
        "top_level": round(
            float(np.mean([root(a) == root(b) for a, b in zip(pred, true, strict=True)])), 4
        ),
        "hier_f1": round(hierarchical_prf(pred, true, parents)[2], 4),
    }
    if confidence is not None:
        sure = confidence >= 0.9
        hit = in_branch[sure]
        out["precision_at_conf_0_9"] = round(float(hit.mean()), 4) if sure.any() else None
        out["share_at_conf_0_9"] = round(float(sure.mean()), 4)
        out["ece"] = round(expected_calibration_error(confidence, in_branch), 4)
        out["ece_strict"] = round(expected_calibration_error(confidence, ok), 4)
        out["backed_off_share"] = round(float(np.isin(pred, list(set(parents))).mean()), 4)
    return out


# The 30 products of general/sample30.csv: the right Shopify category of each, decided by
# reading the tree (dist/en/categories.txt), and the branches also accepted. A prediction is
# "right" when it is the right category; "acceptable" when it lies under an accepted branch
# or is an ancestor (depth >= 2) of the right category (a sure back-off); else "wrong".
_EL, _HG, _HB = "Electronics", "Home & Garden > Kitchen & Dining", "Health & Beauty > Personal Care"
_PET, _SG, _FB = (
    "Animals & Pet Supplies > Pet Supplies",
    "Sporting Goods",
    "Food, Beverages & Tobacco",
)
SAMPLE30_TRUTH: dict[str, tuple[str, tuple[str, ...]]] = {
    "P01": (
        f"{_EL} > Electronics Accessories > Power > Power Adapters & Chargers > Power Banks",
        (),
    ),
    "P02": (f"{_EL} > Video > Televisions", ()),
    "P03": (
        f"{_EL} > Electronics Accessories > Computer Components > Input Devices > Mice & Trackballs",
        (),
    ),
    "P04": (f"{_HG} > Kitchen Appliances > Air Fryers", ()),
    "P05": (
        f"{_HG} > Kitchen Tools & Utensils > Spatulas",
        (f"{_HG} > Kitchen Tools & Utensils > Kitchen Utensil Sets",),
    ),
    "P06": (
        f"{_HG} > Kitchen Appliances > Coffee Makers & Espresso Machines",
        (f"{_HG} > Kitchen Appliances > Coffee Makers & Espresso Machines",),
    ),
    "P07": (
        "Toys & Games > Toys > Building Toys > Construction Set Toys",
        ("Toys & Games > Toys > Building Toys",),
    ),
    "P08": (
        "Toys & Games > Toys > Dolls, Playsets & Toy Figures > Dollhouses",
        ("Toys & Games > Toys > Dolls, Playsets & Toy Figures",),
    ),
    "P09": ("Toys & Games > Puzzles > Jigsaw Puzzles", ()),
    "P10": (f"{_HB} > Cosmetics > Skin Care > Lotions & Moisturizers", ()),
    "P11": (f"{_HB} > Cosmetics > Makeup > Eye Makeup > Mascaras", ()),
    "P12": (f"{_HB} > Cosmetics > Skin Care > Sunscreen", ()),
    "P13": (
        "Hardware > Tools > Drills > Handheld Power Drills",
        (
            "Hardware > Tools > Drills > Handheld Power Drills",
            "Hardware > Tools > Tool Sets > Power Tool Combo Sets",
        ),
    ),
    "P14": ("Hardware > Tools > Measuring Tools & Sensors > Tape Measures", ()),
    "P15": (
        "Hardware > Tools > Tool Sets > Hand Tool Sets > Mechanic Tool Sets",
        ("Hardware > Tools > Tool Sets",),
    ),
    "P16": ("Furniture > Sofas", ("Furniture > Sofas",)),
    "P17": (
        "Furniture > Shelving > Bookcases & Standing Shelves",
        ("Furniture > Shelving > Bookcases & Standing Shelves",),
    ),
    "P18": ("Furniture > Office Furniture > Office Chairs", ()),
    "P19": (
        f"{_PET} > Dog Supplies > Dog Food > Non-Prescription Dog Food",
        (f"{_PET} > Dog Supplies > Dog Food",),
    ),
    "P20": (f"{_PET} > Cat Supplies > Cat Furniture > Cat Scratchers & Scratching Posts", ()),
    "P21": (
        f"{_PET} > Fish & Aquatic Supplies > Aquarium Water Treatments > Water Conditioners",
        (f"{_PET} > Fish & Aquatic Supplies > Aquarium Water Treatments",),
    ),
    "P22": (f"{_FB} > Beverages > Coffee > Coffee Beans & Ground Coffee", ()),
    "P23": (f"{_FB} > Food Items > Pasta & Noodles", ()),
    "P24": (f"{_FB} > Food Items > Cooking & Baking Ingredients > Cooking Oils > Olive Oil", ()),
    "P25": ("Media > Books > Print Books", ()),
    "P26": (f"{_SG} > Athletics > Basketball > Basketballs", ()),
    "P27": (
        f"{_SG} > Fitness & General Exercise Equipment > Yoga & Pilates > Yoga & Pilates Mats",
        (),
    ),
    "P28": (
        f"{_SG} > Outdoor Recreation > Camping & Hiking > Tents > Domes",
        (f"{_SG} > Outdoor Recreation > Camping & Hiking > Tents",),
    ),
    "P29": ("Apparel & Accessories > Clothing > Pants > Jeans", ()),
    "P30": (
        "Apparel & Accessories > Clothing > Outerwear > Coats & Jackets > Rain Coats",
        ("Apparel & Accessories > Clothing > Outerwear > Coats & Jackets",),
    ),
}


def grade(product_id: str, path: str) -> str:
    """``right``, ``acceptable`` or ``wrong`` for a predicted Shopify path."""
    right, accepted = SAMPLE30_TRUTH[product_id]
    if path == right:
        return "right"
    under = any(path == a or path.startswith(a + " > ") for a in accepted)
    ancestor = right.startswith(path + " > ") and path.count(" > ") >= 1
    return "acceptable" if under or ancestor else "wrong"
