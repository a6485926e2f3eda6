"""The shipped mappings against the published files in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multimodal_cat.mapping import Mapping
from multimodal_cat.mapping.rules_io import read_rules_yaml

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
SHOPIFY = DATA / "taxonomies" / "shopify" / "2025-01-unstable"
pytestmark = pytest.mark.skipif(
    not SHOPIFY.is_dir(), reason=f"published taxonomy data not found at {SHOPIFY}"
)


def test_every_published_google_rule_is_reproduced() -> None:
    published = read_rules_yaml(
        SHOPIFY / "data/integrations/google/2021-09-21/mappings/from_shopify.yml"
    )
    assert len(published.rules) == 10535
    mapping = Mapping.load("shopify", "google")
    for rule in published.rules:
        result = mapping.map(rule.source_id)
        assert (result.target_ids, result.provenance) == (rule.target_ids, "published"), (
            rule.source_id
        )
    assert mapping.unmapped() == [
        i for i in mapping.source.ids() if i in set(published.unmapped_ids)
    ]
    assert len(mapping.unmapped()) == 60
    assert mapping.map("aa-1-1").target_ids == ("5322",)


def test_text_form_matches_yaml() -> None:
    text = SHOPIFY / "dist/en/integrations/google/shopify_2025-01_to_google_2021-09-21.txt"
    from_text = Mapping.from_file(text)  # trees come from the header's shipped names
    mapping = Mapping.load("shopify", "google")
    assert {k: r.target_ids for k, r in from_text.rules.items()} == {
        k: r.target_ids for k, r in mapping.rules.items()
    }


def test_legacy_rules_compose_to_google() -> None:
    legacy = read_rules_yaml(SHOPIFY / "data/integrations/shopify/2022-02/mappings/to_shopify.yml")
    assert len(legacy.rules) == 5595
    chained = Mapping.load("shopify/2022-02", "google")
    assert chained.source_name == "shopify/2022-02" and chained.target_name == "google/2021-09-21"
    results = [chained.map(rule.source_id) for rule in legacy.rules]
    mapped = [r for r in results if r.provenance != "unmapped"]
    assert len(mapped) == 5595 and all(r.target_ids and r.target_paths for r in mapped)


def test_invert_gives_candidates() -> None:
    inverse = Mapping.load("google", "shopify")
    candidates = inverse.map("5322").target_ids
    assert "aa-1-1" in candidates and len(candidates) > 1


def test_yaml_round_trip_of_published_file(tmp_path: Path) -> None:
    source = SHOPIFY / "data/integrations/shopify/2022-02/mappings/to_shopify.yml"
    written = Mapping.from_file(source).to_yaml(tmp_path / "to_shopify.yml")
    assert written.read_bytes() == source.read_bytes()
