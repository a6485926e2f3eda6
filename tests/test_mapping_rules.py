"""Tests for Mapping on tiny trees: fallback, compose, invert, YAML and text forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.mapping.errors import MappingFormatError
from multimodal_cat.taxonomy import Taxonomy


@pytest.fixture()
def trees() -> tuple[Taxonomy, Taxonomy, Taxonomy]:
    old = Taxonomy.from_records(
        [("1", None, "Clothes"), ("2", "1", "Shirts"), ("3", None, "Toys")], name="old/1"
    )
    new = Taxonomy.from_records(
        [
            ("aa", None, "Apparel"),
            ("aa-1", "aa", "Tops"),
            ("aa-1-1", "aa-1", "T-Shirts"),
            ("se", None, "Services"),
        ],
        name="new/2",
    )
    google = Taxonomy.from_records(
        [("166", None, "Apparel"), ("212", "166", "Shirts & Tops")], name="google/3"
    )
    return old, new, google


@pytest.fixture()
def new_to_google(trees) -> Mapping:
    _, new, google = trees
    rules = [MappingRule("aa", ("166",)), MappingRule("aa-1", ("212",))]
    return Mapping(rules, new, google, unmapped_ids=["se"])


def test_published_inherited_unmapped(new_to_google: Mapping) -> None:
    published = new_to_google.map("aa-1")
    assert published.target_ids == ("212",) and published.provenance == "published"
    assert (
        published.target_paths == ("Apparel > Shirts & Tops",) and published.taxonomy == "google/3"
    )
    inherited = new_to_google.map("aa-1-1")
    assert inherited.target_ids == ("212",) and inherited.provenance == "inherited"
    assert new_to_google.rule_for("aa-1-1").source_id == "aa-1"
    unmapped = new_to_google.map("se")
    assert (
        unmapped.target_ids == ()
        and unmapped.provenance == "unmapped"
        and unmapped.confidence == 0.0
    )
    assert new_to_google.unmapped() == ["aa-1-1", "se"]
    assert new_to_google.unmapped(inherit=True) == ["se"]
    with pytest.raises(KeyError, match="no category with id 'zz'"):
        new_to_google.map("zz")


def test_inferred_rules_keep_confidence(trees) -> None:
    _, new, google = trees
    m = Mapping([MappingRule("aa", ("166",), provenance="inferred", confidence=0.4)], new, google)
    assert (m.map("aa").provenance, m.map("aa").confidence) == ("inferred", 0.4)
    assert (m.map("aa-1").provenance, m.map("aa-1").confidence) == ("inherited", 0.4)
    with pytest.raises(ValueError, match=r"confidence in \[0, 1\]"):
        MappingRule("a", ("b",), confidence=2.0)


def test_compose(trees, new_to_google: Mapping) -> None:
    old, new, _ = trees
    old_to_new = Mapping(
        [MappingRule("1", ("aa",)), MappingRule("2", ("aa-1-1",)), MappingRule("3", ("se",))],
        old,
        new,
    )
    chained = old_to_new.compose(new_to_google)
    assert chained.source_name == "old/1" and chained.target_name == "google/3"
    assert chained.map("1").target_ids == ("166",) and chained.map("1").provenance == "published"
    # 2 -> aa-1-1 has no rule of its own: the step inherits aa-1's rule
    assert chained.map("2").target_ids == ("212",) and chained.map("2").provenance == "inherited"
    assert chained.map("3").provenance == "unmapped"
    with pytest.raises(ValueError, match="cannot compose"):
        new_to_google.compose(old_to_new)


def test_invert(trees, new_to_google: Mapping) -> None:
    _, new, google = trees
    many = Mapping(
        [
            MappingRule("aa-1-1", ("212",)),
            MappingRule("aa-1", ("212",)),
            MappingRule("aa", ("166",)),
        ],
        new,
        google,
    )
    inverse = many.invert()
    assert inverse.source_name == "google/3" and inverse.target_name == "new/2"
    assert inverse.map("212").target_ids == ("aa-1", "aa-1-1")  # source tree order
    assert list(inverse.rules) == ["166", "212"]


def test_yaml_round_trip(tmp_path: Path, trees, new_to_google: Mapping) -> None:
    _, new, google = trees
    path = new_to_google.to_yaml(tmp_path / "from_new.yml")
    text = path.read_text()
    assert text.startswith(
        "---\ninput_taxonomy: new/2\noutput_taxonomy: google/3\nrules:\n"
        "# Apparel => Apparel\n- input:\n"  # each rule's paths, above it
    )
    assert "    - '166'\n" in text and "unmapped_product_category_ids:\n- se\n" in text
    back = Mapping.from_file(path, source=new, target=google)
    assert back.rules == new_to_google.rules and back.unmapped_ids == ("se",)
    assert back.to_yaml(tmp_path / "again.yml").read_text() == text


def test_yaml_keeps_numeric_ids(tmp_path: Path) -> None:
    src = tmp_path / "to.yml"
    src.write_text(
        "---\ninput_taxonomy: a\noutput_taxonomy: b\nrules:\n- input:\n    product_category_id: 1\n"
        "  output:\n    product_category_id:\n    - aa\n"
    )
    m = Mapping.from_file(src)
    assert m.rules["1"].target_ids == ("aa",) and m.source_name == "a"
    assert m.to_yaml(tmp_path / "out.yml").read_text() == src.read_text()


def test_text_form(tmp_path: Path, trees) -> None:
    _, new, google = trees
    path = tmp_path / "m.txt"
    path.write_text(
        "# Mapping new/2 to google/3\n\n→ Apparel\n⇒ Apparel\n\n→ apparel > tops\n⇒ Apparel > Shirts & Tops\n",
        encoding="utf-8",
    )
    m = Mapping.from_file(path, source=new, target=google)
    assert m.rules == {"aa": MappingRule("aa", ("166",)), "aa-1": MappingRule("aa-1", ("212",))}
    path.write_text("→ Apparel\n⇒ Hats\n", encoding="utf-8")
    with pytest.raises(
        MappingFormatError, match=r"m.txt:2: expected a category path of 'google/3'"
    ):
        Mapping.from_file(path, source=new, target=google)
    with pytest.raises(ValueError, match="needs source= and target="):
        Mapping.from_file(path)


def test_bad_rules(trees) -> None:
    _, new, google = trees
    with pytest.raises(MappingFormatError, match="one rule per source id"):
        Mapping([MappingRule("aa", ("166",)), MappingRule("aa", ("212",))])
    with pytest.raises(MappingFormatError, match="target id of the mapping in 'google/3'.*999"):
        Mapping([MappingRule("aa", ("999",))], new, google)


BLOCK = (
    "---\ninput_taxonomy: a\noutput_taxonomy: b\nrules:\n- input:\n    product_category_id: 1\n"
    "  output:\n    product_category_id:\n    - aa\n- input:\n    product_category_id: x-2\n"
    "  output:\n    product_category_id:\n    - bb\n    - cc\n"
)


@pytest.mark.parametrize(
    "text",
    [
        "input_taxonomy: a\noutput_taxonomy: b\nrules: [{input: {product_category_id: 1}, "
        "output: {product_category_id: [aa]}}, {input: {product_category_id: x-2}, "
        "output: {product_category_id: [bb, cc]}}]\n",
        '{"input_taxonomy": "a", "output_taxonomy": "b", "rules": [{"input": '
        '{"product_category_id": 1}, "output": {"product_category_id": ["aa"]}}, '
        '{"input": {"product_category_id": "x-2"}, "output": {"product_category_id": ["bb", "cc"]}}]}',
        "input_taxonomy: a\noutput_taxonomy: b\nrules:\n  - input: {product_category_id: 1}\n"
        "    output: {product_category_id: [aa]}\n  - input: {product_category_id: x-2}\n"
        "    output:\n      product_category_id: [bb, cc]\n",
    ],
    ids=["yaml-flow", "json", "mixed"],
)
def test_flow_style_and_json_mappings_read_like_block_style(tmp_path: Path, text: str) -> None:
    """Issue 22, item 8: the fast line reader used to read these as zero rules."""
    (tmp_path / "block.yml").write_text(BLOCK)
    (tmp_path / "other.yml").write_text(text)
    block, other = (Mapping.from_file(tmp_path / n) for n in ("block.yml", "other.yml"))
    assert len(other.rules) == 2 and other.rules == block.rules
    assert other.rules["x-2"].target_ids == ("bb", "cc") and other.source_name == "a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "found an empty file"),
        ("   \n# nothing\n", "found an empty file|no 'rules' key"),
        ("input_taxonomy: a\n", "no 'rules' key"),
        ("rules: {input: 1}\n", "'rules' as dict, not a list"),
        ('{"rules": "none"}', "'rules' as str, not a list"),
        (
            "rules:\n- input:\n    product_category_id: [1, 2]\n  output:\n    product_category_id:\n    - aa\n",
            "rule 1: expected each input.product_category_id to be an id",
        ),
        (
            "rules: [{input: {product_category_id: 1}, output: {product_category_id: [{a: 1}]}}]\n",
            "rule 1: expected each output.product_category_id to be an id",
        ),
        (
            "rules: [{input: {product_category_id: true}, output: {product_category_id: [aa]}}]\n",
            "found bool",
        ),
    ],
)
def test_a_mapping_file_without_usable_rules_names_the_problem(
    tmp_path: Path, text, message
) -> None:
    path = tmp_path / "m.yml"
    path.write_text(text)
    with pytest.raises(MappingFormatError, match=message):
        Mapping.from_file(path)


def test_an_empty_rules_list_is_said(tmp_path: Path, caplog) -> None:
    path = tmp_path / "m.yml"
    path.write_text("input_taxonomy: a\noutput_taxonomy: b\nrules: []\n")
    assert len(Mapping.from_file(path).rules) == 0
    assert "empty 'rules' list" in caplog.text


def test_a_rule_file_is_read_line_by_line_not_whole(tmp_path, monkeypatch):
    """A large mapping file is streamed: the fast reader never holds the file's whole text."""
    import multimodal_cat.mapping.rules_io as rules_io

    path = tmp_path / "rules.yml"
    path.write_text(
        "input_taxonomy: a\noutput_taxonomy: b\nrules:\n"
        "- input:\n    product_category_id: x1\n  output:\n    product_category_id:\n    - y1\n",
        encoding="utf-8",
    )

    def whole(*_args, **_kwargs):
        raise AssertionError("the whole file was read into memory")

    monkeypatch.setattr(rules_io, "read_text", whole)
    monkeypatch.setattr(type(path), "read_text", whole)
    read = rules_io.read_rules_yaml(path)
    assert [(r.source_id, r.target_ids) for r in read.rules] == [("x1", ("y1",))]
