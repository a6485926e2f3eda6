"""Tests for the taxonomies shipped in the repository's ``taxonomies/`` folder."""

from __future__ import annotations

import pytest

from multimodal_cat.taxonomy import Taxonomy, UnknownTaxonomyError
from multimodal_cat.taxonomy.readers import read_taxonomy
from multimodal_cat.taxonomy.shipped import taxonomies_dir


def test_google_counts() -> None:
    google = Taxonomy.load("google")
    assert google.name == "google/2021-09-21" and len(google) == 5595
    assert {c.depth for c in google} == set(range(1, 8))
    assert google["5322"].full_path == "Apparel & Accessories > Clothing > Activewear"


def test_shopify_counts_and_attributes() -> None:
    shopify = Taxonomy.load("shopify")
    assert Taxonomy.load("shopify/2025-01-unstable") is shopify  # cached per process
    assert len(shopify) == 10595 and {c.depth for c in shopify} == set(range(1, 9))
    activewear = shopify["gid://shopify/TaxonomyCategory/aa-1-1"]
    assert activewear.full_path == "Apparel & Accessories > Clothing > Activewear"
    assert {"color", "target_gender"} <= set(activewear.attributes)
    assert "Black" in shopify.attribute_values["color"]


def test_shopify_text_and_yaml_agree() -> None:
    text = read_taxonomy(taxonomies_dir() / "shopify/2025-01-unstable/dist/en/categories.txt")
    shopify = Taxonomy.load("shopify")
    assert {c.id: c.full_path for c in text} == {c.id: c.full_path for c in shopify}


def test_legacy_shopify() -> None:
    legacy = Taxonomy.load("shopify/2022-02")
    # 5,595 published entries plus one parent the list leaves out (created, id = its path)
    assert len(legacy) == 5596
    assert legacy["1397"].parent_id == "Electronics > Communications > Telephony > Mobile Phones"


def test_unknown_name_lists_shipped_names() -> None:
    with pytest.raises(
        UnknownTaxonomyError, match=r"unknown taxonomy 'amazon'.*google/2021-09-21.*shopify/2022-02"
    ):
        Taxonomy.load("amazon")
