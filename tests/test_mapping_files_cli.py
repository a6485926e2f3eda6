"""A mapping file (inferred or reviewed) in `categorize --map-to` and `taxonomy map --mapping`;
paths written beside the ids; inverted mappings give shared-confidence candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from multimodal_cat.cli.main import main
from multimodal_cat.feeds import read_output
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.mapping.rules_io import read_rules_yaml
from multimodal_cat.mapping.shipped import load_mapping_file
from multimodal_cat.taxonomy import Taxonomy

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "products.csv"
COATS = "5598"  # Google's "Apparel & Accessories > Clothing > Outerwear > Coats & Jackets"


@pytest.fixture
def reviewed(tmp_path: Path) -> Path:
    """Shopify -> Google where a reviewer sent Activewear (aa-1-1) to Coats & Jackets."""
    shipped = Mapping.load("shopify", "google")
    rules = [
        MappingRule("aa-1-1", (COATS,), "inferred", 0.7) if r.source_id == "aa-1-1" else r
        for r in shipped.rules.values()
    ]
    mapping = Mapping(rules, shipped.source, shipped.target)
    return mapping.to_yaml(tmp_path / "reviewed.yml")


def test_categorize_maps_with_a_mapping_file(reviewed, tmp_path, monkeypatch, fake_predictor):
    import multimodal_cat.predictors.build as build

    monkeypatch.setattr(build, "build_predictor", lambda **_: fake_predictor())
    out = tmp_path / "out.csv"
    args = ["categorize", str(EXAMPLE), "--map-to", str(reviewed), "-o", str(out), "-q"]
    assert main(args) == 0
    row = next(iter(read_output(out)))
    assert (row["google_category_id"], row["google_provenance"]) == (COATS, "inferred")
    assert row["google_category_path"].endswith("Outerwear > Coats & Jackets")


def test_taxonomy_map_uses_a_mapping_file(reviewed, capsys) -> None:
    assert main(["taxonomy", "map", "aa-1-1", "aa-1-1-1", "--mapping", str(reviewed),
                 "--format", "jsonl"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["target_ids"] == [COATS] and first["provenance"] == "inferred"
    assert first["target_paths"][0].endswith("Coats & Jackets")
    assert second["target_ids"] == ["5322"] and second["provenance"] == "published"


def test_taxonomy_map_reads_shopifys_own_rule_file(capsys) -> None:
    from multimodal_cat.taxonomy.shipped import INTEGRATIONS, taxonomies_dir

    rules = taxonomies_dir() / INTEGRATIONS / "google/2021-09-21/mappings/from_shopify.yml"
    assert main(["taxonomy", "map", "aa-1-1", "--mapping", str(rules)]) == 0
    assert "5322\tApparel & Accessories > Clothing > Activewear" in capsys.readouterr().out


def test_a_mapping_file_that_does_not_fit_the_tree_is_a_user_error(reviewed, capsys) -> None:
    args = ["taxonomy", "map", "1", "--mapping", str(reviewed), "--from", "google"]
    assert main(args) == 2 and "expected every source id" in capsys.readouterr().err


def test_written_yaml_carries_the_paths_and_reads_back(reviewed) -> None:
    text = reviewed.read_text(encoding="utf-8")
    assert "# Apparel & Accessories > Clothing > Activewear => Apparel & Accessories > " \
        "Clothing > Outerwear > Coats & Jackets\n- input:\n    product_category_id: aa-1-1\n" in text
    back = load_mapping_file(reviewed)
    assert back.rules["aa-1-1"] == MappingRule("aa-1-1", (COATS,), "inferred", 0.7)
    assert len(back.rules) == len(read_rules_yaml(reviewed).rules)
    assert len(yaml.safe_load(text)["rules"]) == len(back.rules)  # any YAML reader skips them


def test_inverted_candidates_are_inverted_with_a_shared_confidence() -> None:
    mapped = Mapping.load("google", "shopify").map("5322")
    assert mapped.provenance == "inverted" and len(mapped.target_ids) > 1
    assert mapped.confidence == pytest.approx(1 / len(mapped.target_ids))
    tree = Taxonomy.from_paths(["A", "B", "C"])
    one = Mapping([MappingRule("A", ("x",)), MappingRule("B", ("x",), "inferred", 0.8),
                   MappingRule("C", ("y",))], source=tree).invert()
    assert (one.map("x").target_ids, one.map("x").confidence) == (("A", "B"), 0.4)
    assert (one.map("y").provenance, one.map("y").confidence) == ("inverted", 1.0)


def test_two_mappings_into_one_tree_are_refused_before_any_model(reviewed, tmp_path, capsys):
    args = ["categorize", str(EXAMPLE), "--map-to", "google", "--map-to", str(reviewed)]
    assert main([*args, "-o", str(tmp_path / "o.csv")]) == 2
    assert "one mapping per target tree, found two into google" in capsys.readouterr().err
