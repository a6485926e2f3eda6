"""Audits on small feeds with deterministic encoders (tests/catalog_helpers.py): each check
finds what it should and leaves what it should alone; bad rows are reported; empty feeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from catalog_helpers import ColourEncoder, WordsEncoder, swatch

from multimodal_cat.catalog.audits import AuditError, audit, parse_checks
from multimodal_cat.catalog.audits.context import relation
from multimodal_cat.catalog.audits.duplicates import model_numbers, variant_difference
from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.index import CatalogIndex
from multimodal_cat.encoders.cache import EmbeddingCache
from multimodal_cat.inputs import to_products

RED, BLUE, GREEN = (200, 30, 30), (30, 30, 200), (30, 160, 30)


@pytest.fixture
def encoders(tmp_path, monkeypatch) -> CatalogEncoders:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    return CatalogEncoders(WordsEncoder(), ColourEncoder(), cache=EmbeddingCache(tmp_path / "c"))


def _row(pid, title, image, category, seller="s1", seller_category=""):
    return {"id": pid, "title": title, "image": image, "curated": category, "seller": seller,
            "seller_category": seller_category}


def test_relation_is_tree_aware() -> None:
    assert relation("A > B", "A > B > C") == "ancestor"
    assert relation("A > B > C", "A > B > D") == "sibling"
    assert relation("A > B > C", "A > E > F") == "cousin"
    assert relation("A > B", "X > B") == "other-root"
    assert relation("Bags", "Electronics") == "other-root"  # two roots are not siblings


def test_variants_and_model_numbers() -> None:
    assert variant_difference("Nike Tee Red", "Nike Tee Blue") == "colour: red vs blue"
    assert variant_difference("Tee Size M", "Tee Size XL").startswith("size")
    assert model_numbers("Sony Bravia KDL-40V4100 LCD") == {"kdl40v4100"}
    assert variant_difference("Sony KDL-40V4100", "Sony KDL-46V4100").startswith("model")
    assert variant_difference("Sony KDL-40V4100 TV", "Sony KDL40V4100 black") is None


def test_model_numbers_agree_across_spellings_and_suffixes() -> None:
    from multimodal_cat.catalog.audits.duplicates import codes_agree, spellings

    def agree(a: str, b: str) -> str:
        return codes_agree(model_numbers(a), model_numbers(b), spellings(a), spellings(b))

    assert agree("Panasonic Lumix DMCFZ28K black", "Panasonic Lumix DMC-FZ28 camera") == "same"
    assert agree("Nikon camera coolpixp6000bk", "Nikon Coolpix P6000 13 megapixels") == "same"
    assert agree("TomTom XL 1EG005200", "TomTom XL 330 maps 1EG0 .052.00") == "same"
    assert agree("Sony KDL-40V4100", "Sony KDL-46V4100") == "conflict"
    assert agree("Sony DSCW150R red", "Sony DSC-W150N gold") == "conflict"  # not a suffix
    assert agree("Kenwood 6-disc changer", "Onkyo 6-disc changer DXC390") == "none"
    assert model_numbers("Onkyo 6-disc 24-port 3pack") == set()  # counts, not codes


def _context(titles: list[str], text: np.ndarray, shops: list[str] | None):
    from multimodal_cat.catalog.audits.context import AuditContext
    from multimodal_cat.products import Product

    products = [Product(id=str(i), title=t, extra={"shop": shops[i]} if shops else {})
                for i, t in enumerate(titles)]
    n = len(products)
    return AuditContext(products, list(range(1, n + 1)), {"text": text}, [None] * n,
                        [None] * n, pd.DataFrame())


def test_mutual_best_match_links_two_shops_listings_only() -> None:
    from multimodal_cat.catalog.audits.duplicates import duplicate_pairs

    def unit(*rows):
        x = np.array(rows, np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    titles = ["acme blender", "acme blender jug", "acme mixer bowl", "garden hose"]
    text = unit([1, 0.2, 0, 0], [1, 0, 0.9, 0], [0.1, 1, 0, 0], [0, 0, 0, 1])
    # 0 and 1 (shop a vs b) are each other's best cross-shop match at cosine ~0.7
    found = {(i, j) for i, j, _, _ in duplicate_pairs(_context(titles, text, list("abaa")))}
    assert found == {(0, 1)}
    one_shop = duplicate_pairs(_context(titles, text, None))  # one seller: the rule is inert
    assert one_shop == []


def test_rare_model_number_pairs_beyond_neighbours() -> None:
    from multimodal_cat.catalog.audits.duplicates import rare_model_pairs

    models = [{"kdl40v4100"}, set(), {"kdl40v4100"}, {"abc1234"}, {"abc1234"}, {"abc1234"},
              {"abc1234"}]
    assert rare_model_pairs(models) == {(0, 2)}  # abc1234 is named by 4 rows: a series


def test_duplicates_grouped_variants_not_merged(encoders) -> None:
    feed = pd.DataFrame([
        _row("a", "Nike Running Shoe Red", swatch(RED), "Shoes"),
        _row("b", "Nike Running Shoe Red", swatch(RED).resize((30, 30)), "Shoes"),  # re-encoded
        _row("c", "Nike Running Shoe Red", swatch(RED), "Shoes"),
        _row("d", "Nike Running Shoe Blue", swatch(RED), "Shoes"),  # colour variant
        _row("e", "Steel Frying Pan", swatch(GREEN, stripe=5), "Kitchen"),
    ])
    found = audit(feed, encoders, checks="duplicates", category="curated")
    assert list(found["check"]) == ["duplicates"]
    assert sorted(found.iloc[0]["ids"]) == ["a", "b", "c"]  # grouped, the blue variant apart
    pair = found.iloc[0]["evidence"]["pairs"][0]
    assert pair["image_cosine"] > 0.95 and pair["by"] == ["photo copy"]  # both photos at hand:
    # the photos decide, the title alone is no evidence


def test_identical_titles_with_different_photos_are_not_duplicates(encoders) -> None:
    with_photos = pd.DataFrame([
        _row("a", "Kids Boys Check Blue Shirt", swatch(RED, stripe=2), "Shirts"),
        _row("b", "Kids Boys Check Blue Shirt", swatch(GREEN, stripe=20), "Shirts"),
    ])
    assert audit(with_photos, encoders, checks="duplicates").empty
    without = pd.DataFrame([_row("a", "Kids Boys Check Blue Shirt", None, "Shirts"),
                            _row("b", "Kids Boys Check Blue Shirt", None, "Shirts")])
    found = audit(without, encoders, checks="duplicates")
    assert found.iloc[0]["evidence"]["pairs"][0]["by"] == ["text"]


def test_reuse_same_photo_other_seller_and_category(encoders) -> None:
    feed = pd.DataFrame([
        _row("a", "Leather handbag brown", swatch(BLUE, stripe=3), "Bags", seller="s1"),
        _row("b", "Wireless earbuds", swatch(BLUE, stripe=3), "Electronics", seller="s2"),
        _row("c", "Cotton socks", swatch(GREEN), "Socks", seller="s1"),
    ])
    found = audit(feed, encoders, checks=["reuse"], category="curated")
    assert len(found) == 1 and sorted(found.iloc[0]["ids"]) == ["a", "b"]
    reasons = " ".join(found.iloc[0]["evidence"]["reasons"])
    assert "sellers" in reasons and "titles differ" in reasons and "categories" in reasons


def _labelled_feed(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(_row(f"s{i}", f"running shoe sneaker model {i}", swatch(RED),
                         "Footwear > Shoes > Sneakers"))
        rows.append(_row(f"k{i}", f"kitchen frying pan steel {i}", swatch(GREEN, stripe=4),
                         "Home > Kitchen > Pans"))
    return rows


def test_categories_flags_a_wrong_root_not_an_ancestor(encoders) -> None:
    rows = _labelled_feed()
    rows[0]["curated"] = "Home > Kitchen > Pans"  # a sneaker listed as a pan: other root
    rows[2]["curated"] = "Footwear > Shoes"  # an ancestor of the truth: fine
    found = audit(pd.DataFrame(rows), encoders, checks="categories", category="curated")
    assert list(found["ids"].str[0]) == ["s0"]
    assert found.iloc[0]["evidence"]["relation"] == "other-root"
    assert found.iloc[0]["severity"] == "high"


def test_categories_from_the_sellers_tree_through_a_mapping(encoders) -> None:
    rows = _labelled_feed()
    for row in rows:
        row["seller_category"] = "shoes" if row["id"].startswith("s") else "pans"
        row["curated"] = None
    rows[3]["seller_category"] = "shoes"  # a pan the seller filed under shoes
    mapping = {"shoes": "Footwear > Shoes > Sneakers", "pans": "Home > Kitchen > Pans"}
    found = audit(pd.DataFrame(rows), encoders, checks="categories", seller_mapping=mapping,
                  category="curated")
    assert [ids[0] for ids in found["ids"]] == [rows[3]["id"]]
    assert found.iloc[0]["evidence"]["seller_category"] == "shoes"


def test_images_flags_a_swapped_photo(encoders) -> None:
    rows = _labelled_feed()
    rows[4]["image"] = swatch(GREEN, stripe=4)  # a sneaker with a pan's photo
    found = audit(pd.DataFrame(rows), encoders, checks="images", category="curated")
    assert [ids[0] for ids in found["ids"]] == [rows[4]["id"]]
    evidence = found.iloc[0]["evidence"]
    assert evidence["image_says"].startswith("Home") and evidence["text_says"].startswith("Foot")


def test_labels_finds_flipped_labels_with_cleanlab(encoders) -> None:
    pytest.importorskip("cleanlab")
    rows = _labelled_feed(15)
    rows[1]["curated"] = "Footwear > Shoes > Sneakers"  # a pan labelled as a sneaker
    found = audit(pd.DataFrame(rows), encoders, checks="labels", category="curated")
    assert rows[1]["id"] in [ids[0] for ids in found["ids"]]
    assert found.iloc[0]["evidence"]["likely"] == "Home > Kitchen > Pans"


def test_bad_rows_reported_never_dropped_and_sorted_by_severity(encoders) -> None:
    rows = _labelled_feed(6)
    rows[0]["curated"] = "Home > Kitchen > Pans"
    rows.append({"id": "bad", "title": None, "image": None, "curated": "X", "seller": "s"})
    found = audit(pd.DataFrame(rows), encoders, checks="categories", category="curated")
    assert list(found["check"]) == ["categories", "input"]
    assert found.iloc[-1]["ids"] == ["bad"] and found.iloc[-1]["severity"] == "bad-row"
    assert found.iloc[-1]["rows"] == [len(rows)]


def test_empty_feed_and_unknown_check(encoders) -> None:
    empty = audit([], encoders, checks="all")
    assert empty.empty and list(empty.columns)[:4] == ["check", "finding", "severity", "score"]
    with pytest.raises(AuditError, match="expected checks among"):
        parse_checks("duplicates,spelling")


def test_neighbour_memory_is_n_times_k(encoders) -> None:
    from multimodal_cat.catalog.audits import audit_context

    ctx = audit_context(pd.DataFrame(_labelled_feed(30)), encoders)
    rows, sims = ctx.neighbours("text")
    assert rows.shape == (60, 10) and sims.dtype == np.float32


def _sibling_feed(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(_row(f"s{i}", f"formal check shirt {i}", swatch(RED),
                         "Apparel > Topwear > Shirts"))
        rows.append(_row(f"t{i}", f"cotton round neck tshirt {i}", swatch(BLUE),
                         "Apparel > Topwear > Tshirts"))
    return rows


def test_images_flags_a_confident_sibling_swap(encoders) -> None:
    # a shirt listed with a T-shirt's photo: siblings in the tree, yet the photo is clear
    # (the tree-weighted score capped siblings at 0.6, under its 0.7 threshold)
    rows = _sibling_feed()
    rows[2]["image"] = swatch(BLUE)
    found = audit(pd.DataFrame(rows), encoders, checks="images", category="curated")
    assert [ids[0] for ids in found["ids"]] == [rows[2]["id"]]
    evidence = found.iloc[0]["evidence"]
    assert evidence["relation"] == "sibling" and evidence["image_says"].endswith("Tshirts")


def test_swap_probability_leaves_unsure_photos_and_unchecked_products_alone() -> None:
    from multimodal_cat.catalog.audits.images import THRESHOLD, swap_probability

    prior = np.array([0.5, 0.3, 0.2])
    text = np.array([[0.98, 0.01, 0.01]] * 3 + [[0.0, 0.0, 0.0]])
    image = np.array([[0.02, 0.97, 0.01],  # a clear photo of another category
                      [0.45, 0.50, 0.05],  # an unsure photo, half of it the title's category
                      [0.97, 0.02, 0.01],  # agreeing
                      [0.0, 1.0, 0.0]])  # no title: not checked
    score = swap_probability(image, text, prior)
    assert score[0] >= THRESHOLD and score[1] < THRESHOLD and score[2] < 0.5 and score[3] == 0


def test_reference_probes_are_fitted_once_per_index(encoders, monkeypatch) -> None:
    from multimodal_cat.catalog import probes

    rows = _labelled_feed()
    reference = CatalogIndex(encoders=encoders.keys)
    vectors = encoders.encode_products(to_products(pd.DataFrame(rows)))
    reference.add([r["id"] for r in rows], **vectors, categories=[r["curated"] for r in rows])
    fits = []
    real = probes.probe_model
    monkeypatch.setattr(probes, "probe_model", lambda: fits.append(1) or real())
    for _ in range(2):
        audit(pd.DataFrame(rows[:6]), encoders, checks="images", reference=reference)
    assert len(fits) == 2  # one image and one text probe, kept for the second audit
    reference.add(["more"], **encoders.encode_products(to_products(pd.DataFrame(rows[:1]))),
                  categories=[rows[0]["curated"]])
    audit(pd.DataFrame(rows[:6]), encoders, checks="images", reference=reference)
    assert len(fits) == 4  # products added: fitted again
