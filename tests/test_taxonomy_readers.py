"""Tests for the taxonomy readers, writers and format detection (tiny files written here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multimodal_cat.taxonomy import Taxonomy, TaxonomyFormatError
from multimodal_cat.taxonomy.readers import detect_format, read_taxonomy

GOOGLE = """# Google_Product_Taxonomy_Version: 2021-09-21
1 - Animals & Pet Supplies
3237 - Animals & Pet Supplies > Live Animals
2 - Animals & Pet Supplies > Pet Supplies
166 - Apparel & Accessories
"""
SHOPIFY_TXT = """# Shopify Product Taxonomy - Categories: 2025-01-unstable
# Format: {GID} : {Ancestor name} > ... > {Category name}

gid://shopify/TaxonomyCategory/aa     : Apparel & Accessories
gid://shopify/TaxonomyCategory/aa-1   : Apparel & Accessories > Clothing
gid://shopify/TaxonomyCategory/aa-1-1 : Apparel & Accessories > Clothing > Activewear
"""
FULL_NAMES = """---
- id: 1
  full_name: Animals & Pet Supplies
- id: 2
  full_name: Animals & Pet Supplies > Live Animals
- id: 3
  full_name: 'Animals & Pet Supplies > Pet: Supplies'
"""


def write(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(("\ufeff" if bom else "").encode() + data.encode("utf-8"))
    return path


def shopify_folder(root: Path) -> Path:
    (root / "data" / "categories").mkdir(parents=True)
    write(root / "VERSION", "2025-01-unstable\n")
    write(
        root / "data" / "categories" / "aa_apparel.yml",
        """---
- id: aa
  name: Apparel & Accessories
  children:
  - aa-1
  attributes:
  - color
- id: aa-1
  name: Clothing
  children: []
  attributes:
  - color
  - target_gender
""",
    )
    write(
        root / "data" / "categories" / "bu_bundles.yml",
        "---\n- id: bu\n  name: Bundles\n  children: []\n  attributes: []\n",
    )
    write(
        root / "data" / "attributes.yml",
        """---
base_attributes:
- id: 1
  name: Color
  friendly_id: color
  handle: color
  values:
  - color__red
  - color__blue
- id: 2
  name: Target gender
  friendly_id: target_gender
  handle: target_gender
  values:
  - target_gender__female
extended_attributes:
- name: Frame color
  handle: frame-color
  friendly_id: frame_color
  values_from: color
""",
    )
    write(
        root / "data" / "values.yml",
        """---
- id: 1
  name: Red
  friendly_id: color__red
  handle: color__red
- id: 2
  name: Blue
  friendly_id: color__blue
  handle: color__blue
- id: 3
  name: Female
  friendly_id: target_gender__female
  handle: target_gender__female
""",
    )
    return root


def test_google(tmp_path: Path) -> None:
    tax = Taxonomy.load(write(tmp_path / "taxonomy-with-ids.en-US.txt", GOOGLE))
    assert tax.name == "google/2021-09-21" and len(tax) == 4
    assert tax["3237"].parent_id == "1" and tax["166"].depth == 1


def test_shopify_txt(tmp_path: Path) -> None:
    tax = Taxonomy.load(write(tmp_path / "categories.txt", SHOPIFY_TXT))
    assert tax.name == "shopify/2025-01-unstable"
    assert tax.ids() == ["aa", "aa-1", "aa-1-1"]
    assert tax["gid://shopify/TaxonomyCategory/aa-1-1"].parent_id == "aa-1"


def test_shopify_yaml_with_attributes(tmp_path: Path) -> None:
    root = shopify_folder(tmp_path / "shopify")
    for path in (root, root / "data" / "categories"):
        tax = Taxonomy.load(path)
        assert tax.name == "shopify/2025-01-unstable" and tax.ids() == ["aa", "aa-1", "bu"]
        assert tax["aa-1"].attributes == ("color", "target_gender")
        assert tax["aa-1"].full_path == "Apparel & Accessories > Clothing"
        assert tax.attribute_values == {
            "color": ["Red", "Blue"],
            "target_gender": ["Female"],
            "frame_color": ["Red", "Blue"],
        }


def test_full_names(tmp_path: Path) -> None:
    folder = tmp_path / "shopify" / "2022-02"
    folder.mkdir(parents=True)
    tax = Taxonomy.load(write(folder / "full_names.yml", FULL_NAMES))
    assert tax.name == "shopify/2022-02" and tax["3"].name == "Pet: Supplies"


@pytest.mark.parametrize(
    "text", ["id,parent_id,name\n1,,Animals\n2,1,Pets\n", "id,path\n1,Animals\n2,Animals > Pets\n"]
)
def test_csv(tmp_path: Path, text: str) -> None:
    tax = Taxonomy.load(write(tmp_path / "market.csv", text))
    assert tax.name == "market" and tax["2"].full_path == "Animals > Pets"


def test_detect_and_override(tmp_path: Path) -> None:
    google = write(tmp_path / "g.txt", GOOGLE)
    assert detect_format(google) == "google"
    assert detect_format(write(tmp_path / "s.txt", SHOPIFY_TXT)) == "shopify_txt"
    assert (
        read_taxonomy(write(tmp_path / "weird.dat", GOOGLE), format="google")["2"].name
        == "Pet Supplies"
    )
    with pytest.raises(TaxonomyFormatError, match="cannot tell the format"):
        detect_format(write(tmp_path / "x.txt", "hello world\n"))
    with pytest.raises(FileNotFoundError):
        read_taxonomy(tmp_path / "absent.txt")


def test_bom_and_crlf(tmp_path: Path) -> None:
    for name, text in (
        ("g.txt", GOOGLE),
        ("categories.txt", SHOPIFY_TXT),
        ("full_names.yml", FULL_NAMES),
        ("m.csv", "id,parent_id,name\n1,,Animals\n2,1,Pets\n"),
    ):
        tax = Taxonomy.load(write(tmp_path / name, text, bom=True, crlf=True))
        assert all("\r" not in c.name and "\ufeff" not in c.id for c in tax), name


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "g.txt", GOOGLE + "oops no separator\n")
    with pytest.raises(TaxonomyFormatError) as info:
        Taxonomy.load(path, format="google")
    assert info.value.line == 6 and info.value.path == str(path)
    assert (
        str(info.value) == f"{path}:6: expected 'ID - Name > Name > ...', found 'oops no separator'"
    )
    with pytest.raises(TaxonomyFormatError, match=r":2: expected names separated by ' > '"):
        Taxonomy.load(write(tmp_path / "h.txt", "1 - A\n2 - A >  > B\n"), format="google")
    with pytest.raises(
        TaxonomyFormatError, match="expected a header 'id,parent_id,name' or 'id,path'"
    ):
        Taxonomy.load(write(tmp_path / "bad.csv", "a,b\n1,2\n"))


def test_duplicate_id(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyFormatError, match=r":3: duplicate id '1'.*first on line 2"):
        Taxonomy.load(write(tmp_path / "g.txt", "# header\n1 - A\n1 - B\n"))
    with pytest.raises(TaxonomyFormatError, match=r"c.csv:3: duplicate id '1'"):
        Taxonomy.load(write(tmp_path / "c.csv", "id,parent_id,name\n1,,A\n1,,B\n"))


def test_missing_parent(tmp_path: Path) -> None:
    path = write(tmp_path / "g.txt", "1 - A\n2 - A > B > C\n")
    with pytest.raises(
        TaxonomyFormatError, match=r"g.txt:2: missing parent: expected a line for 'A > B'"
    ):
        Taxonomy.load(path)
    tax = Taxonomy.load(path, missing_parents="create")
    assert tax["2"].parent_id == "A > B" and tax["A > B"].parent_id == "1"
    with pytest.raises(
        TaxonomyFormatError, match=r"c.csv:2: missing parent: expected a row with id '9'"
    ):
        Taxonomy.load(write(tmp_path / "c.csv", "id,parent_id,name\n1,9,A\n"))
    root = shopify_folder(tmp_path / "s")
    yml = root / "data" / "categories" / "bu_bundles.yml"
    write(yml, "---\n- id: bu\n  name: Bundles\n  children:\n  - bu-1\n")
    with pytest.raises(TaxonomyFormatError, match=r"bu_bundles.yml:2: expected a category 'bu-1'"):
        Taxonomy.load(root)


def test_cycle(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,parent_id,name\n1,,A\n2,3,B\n3,2,C\n")
    with pytest.raises(
        TaxonomyFormatError, match=r"c.csv: cycle in parent links.*(2 -> 3 -> 2|3 -> 2 -> 3)"
    ):
        Taxonomy.load(path)


@pytest.mark.parametrize("name", ["g.txt", "categories.txt", "full_names.yml", "t.csv", "folder"])
def test_writers_round_trip(tmp_path: Path, name: str) -> None:
    tax = Taxonomy.load(shopify_folder(tmp_path / "src"))
    back = Taxonomy.load(tax.save(tmp_path / name))
    assert [(c.id, c.path, c.parent_id) for c in back] == [(c.id, c.path, c.parent_id) for c in tax]
    if name == "folder":
        assert back.attribute_values == tax.attribute_values and back["aa-1"].attributes == (
            "color",
            "target_gender",
        )


def test_google_writer_is_byte_exact(tmp_path: Path) -> None:
    src = write(tmp_path / "in.txt", GOOGLE)
    out = Taxonomy.load(src).save(tmp_path / "out.txt", format="google")
    assert out.read_text() == GOOGLE


def test_csv_tree_field_over_the_csv_limit_is_a_format_error(tmp_path):
    """Issue 22, item 5: a 400 KB field in a tree file is never a traceback."""
    import csv as csv_module

    from multimodal_cat.taxonomy import TaxonomyFormatError
    from multimodal_cat.taxonomy.readers import read_csv

    path = tmp_path / "tree.csv"
    path.write_text(f"id,parent_id,name\n1,,Apparel\n2,1,{'x' * 400_000}\n")
    saved = csv_module.field_size_limit()
    try:
        csv_module.field_size_limit(131_072)  # the module's default, as in a fresh process
        with pytest.raises(TaxonomyFormatError, match="tree.csv:3: expected CSV fields under"):
            read_csv(path)
    finally:
        csv_module.field_size_limit(saved)
