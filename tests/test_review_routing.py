"""Routing reasons: low confidence, sure branch, seller category disagreement."""

from __future__ import annotations

from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.products import Product
from multimodal_cat.review.routing import review_reasons
from multimodal_cat.taxonomy import Taxonomy

TREE = Taxonomy.from_paths(
    ["Toys > Dolls", "Toys > Construction Sets", "Hardware > Masonry > Bricks", "Hardware > Drills"],
    ids=["t-1", "t-2", "h-1-1", "h-2"],
)


def _pred(cid: str, conf: float, *others: tuple[str, float]) -> Prediction:
    alts = [CategoryScore(cid, TREE[cid].full_path, conf)]
    alts += [CategoryScore(o, TREE[o].full_path, s) for o, s in others]
    return Prediction(cid, TREE[cid].full_path, conf, alternatives=alts)


def test_confident_prediction_without_seller_category_needs_no_review():
    assert review_reasons(_pred("t-1", 0.97), Product(), TREE, threshold=0.9) == []


def test_low_confidence_with_split_across_branches_has_no_sure_branch():
    reasons = review_reasons(_pred("t-1", 0.5, ("h-2", 0.45)), Product(), TREE, threshold=0.9)
    assert reasons == ["low confidence (0.50 < 0.90)"]


def test_sure_branch_is_named_when_siblings_share_the_mass():
    reasons = review_reasons(_pred("t-1", 0.5, ("t-2", 0.45)), Product(), TREE, threshold=0.9)
    assert reasons[1] == "branch 'Toys' is sure (0.95) but not the leaf"


def test_seller_category_by_id_path_or_words():
    confident = _pred("h-1-1", 0.99)
    agree = [Product(seller_category="Hardware"), Product(seller_category="h-1-1"),
             Product(seller_category="hardware > masonry"), Product(seller_category="bricks and blocks")]
    for product in agree:
        assert review_reasons(confident, product, TREE, threshold=0.9) == [], product
    for text in ("Toys", "t-2", "toys > dolls", "fashion dolls"):
        reasons = review_reasons(confident, Product(seller_category=text), TREE, threshold=0.9)
        assert reasons == [f"seller category {text!r} disagrees"], text
    unknown = review_reasons(confident, Product(seller_category="zzz qqq"), TREE, threshold=0.9)
    assert unknown == []


def test_a_stored_threshold_just_above_one_accepts_nothing() -> None:
    """Calibration stores 'no confidence reaches the target' as the next float above 1."""
    import math

    from multimodal_cat.review.routing import stored_router
    from multimodal_cat.taxonomy import Taxonomy

    class Stored:
        taxonomy = Taxonomy.from_paths(["A > B"])
        confidence_thresholds = {"0.98": math.nextafter(1.0, 2.0)}

    router = stored_router(Stored(), 0.98)
    assert router.threshold > 1.0
