"""Tests for the in-memory Taxonomy tree (no files)."""

from __future__ import annotations

import pytest

from multimodal_cat.taxonomy import Category, Taxonomy, TaxonomyFormatError


@pytest.fixture()
def tax() -> Taxonomy:
    return Taxonomy.from_records(
        [
            ("1", None, "Apparel"),
            ("2", "1", "Shoes"),
            ("3", "2", "Running Shoes"),
            ("4", "1", "Shirts"),
            ("5", None, "Toys"),
            ("6", "5", "Shoe Toys"),
        ],
        name="tiny",
    )


def test_lookups(tax: Taxonomy) -> None:
    assert len(tax) == 6 and "3" in tax and "9" not in tax
    assert tax["3"].path == ("Apparel", "Shoes", "Running Shoes")
    assert tax["3"].full_path == "Apparel > Shoes > Running Shoes"
    assert tax["3"].depth == 3 and tax["3"].parent_id == "2"
    assert tax[3].id == "3"  # ints are accepted
    assert tax.get("9") is None
    with pytest.raises(KeyError, match="no category with id '9' in taxonomy 'tiny'"):
        tax["9"]


def test_find_is_tolerant(tax: Taxonomy) -> None:
    assert tax.find("apparel>shoes >  RUNNING   shoes").id == "3"
    assert tax.resolve("Toys > Shoe Toys").id == "6"
    with pytest.raises(KeyError):
        tax.find("Apparel > Hats")


def test_structure(tax: Taxonomy) -> None:
    assert [c.id for c in tax] == ["1", "2", "3", "4", "5", "6"]
    assert [c.id for c in tax.ancestors("3")] == ["1", "2"]
    assert [c.id for c in tax.ancestors("3", include_self=True)] == ["1", "2", "3"]
    assert [c.id for c in tax.children("1")] == ["2", "4"]
    assert [c.id for c in tax.roots()] == ["1", "5"]
    assert tax.parent("1") is None and tax.parent("2").id == "1"
    assert [c.id for c in tax.leaves()] == ["3", "4", "6"]
    assert tax.is_leaf("3") and not tax.is_leaf("1")
    assert tax.max_depth == 3


def test_subtree_and_cut(tax: Taxonomy) -> None:
    sub = tax.subtree("2")
    assert [c.id for c in sub] == ["2", "3"]
    assert sub["2"].depth == 1 and sub["3"].full_path == "Shoes > Running Shoes"
    cut = tax.cut(1)
    assert [c.id for c in cut] == ["1", "5"] and cut.max_depth == 1
    with pytest.raises(ValueError, match="at least 1"):
        tax.cut(0)


def test_search(tax: Taxonomy) -> None:
    assert [c.id for c in tax.search("shoes")][:2] == ["2", "3"]
    assert tax.search("running shoe")[0].id == "3"
    assert tax.search("zebra") == [] and tax.search("  ") == []
    assert len(tax.search("s", limit=2)) == 2


def test_to_index(tax: Taxonomy) -> None:
    index = tax.to_index()
    assert index.ids == ["1", "2", "3", "4", "5", "6"]
    assert index.parents == [-1, 0, 1, 0, -1, 4]
    assert index.depths == [1, 2, 3, 2, 1, 2]
    assert index.paths[2] == "Apparel > Shoes > Running Shoes"
    assert index.position("4") == 3 and len(index) == 6


def test_children_listed_first_are_ordered_depth_first() -> None:
    tax = Taxonomy.from_records([("b", "a", "B"), ("a", None, "A"), ("c", "a", "C")])
    assert [c.id for c in tax] == ["a", "b", "c"]
    assert all(p < i for i, p in enumerate(tax.to_index().parents))


def test_from_paths_creates_missing_nodes() -> None:
    tax = Taxonomy.from_paths(["A > B > C", "A > D"], ids=["c", "d"])
    assert [c.id for c in tax] == ["A", "A > B", "c", "d"]
    assert tax["c"].depth == 3 and tax["d"].parent_id == "A"
    with pytest.raises(TaxonomyFormatError, match="one id per path"):
        Taxonomy.from_paths(["A"], ids=["1", "2"])


def test_gid_ids_are_accepted() -> None:
    tax = Taxonomy.from_records([("aa", None, "Apparel"), ("aa-1", "aa", "Clothing")])
    assert tax["gid://shopify/TaxonomyCategory/aa-1"].name == "Clothing"


def test_constructor_rejects_bad_trees() -> None:
    with pytest.raises(TaxonomyFormatError, match="duplicate category id '1'"):
        Taxonomy.from_records([("1", None, "A"), ("1", None, "B")])
    with pytest.raises(TaxonomyFormatError, match="names parent '7', which is not in"):
        Taxonomy.from_records([("1", "7", "A")])
    with pytest.raises(TaxonomyFormatError, match=r"cycle .* found (2 -> 3 -> 2|3 -> 2 -> 3)"):
        Taxonomy.from_records([("1", None, "A"), ("2", "3", "B"), ("3", "2", "C")])
    with pytest.raises(ValueError):  # TaxonomyFormatError is a ValueError
        Taxonomy([Category("x", "X", ("X",), "x", 1)])


def test_attribute_values_default_and_lazy() -> None:
    assert Taxonomy.from_records([("1", None, "A")]).attribute_values == {}
    calls = []

    def load() -> dict[str, list[str]]:
        calls.append(1)
        return {"color": ["Red"]}

    tax = Taxonomy([Category("1", "A", ("A",), None, 1, ("color",))], attribute_values=load)
    assert calls == []
    assert tax.attribute_values == {"color": ["Red"]} and tax.attribute_values["color"] == ["Red"]
    assert calls == [1]
