"""Taxonomy and mapping readers stay bounded in memory on hostile files (generated here)."""

from __future__ import annotations

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.errors import FormatError
from multimodal_cat.mapping.rules_io import read_rules_yaml
from multimodal_cat.taxonomy import TaxonomyFormatError
from multimodal_cat.taxonomy.readers import read_taxonomy

MAX_DEPTH = 256  # multimodal_cat.taxonomy.readers.MAX_DEPTH

BOMB = """\
- id: 1
  full_name: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_a_100000_deep_chain_is_refused_without_building_paths(tmp_path):
    lines = ["id,parent_id,name", "0,,Root"] + [f"{i},{i - 1},Level {i}" for i in range(1, 100_000)]
    (tmp_path / "deep.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(TaxonomyFormatError, match=f"at most {MAX_DEPTH} levels deep"):
        read_taxonomy(tmp_path / "deep.csv")


def test_a_deep_path_line_is_refused(tmp_path):
    deep = " > ".join(["A"] * 100_000)
    (tmp_path / "deep.txt").write_text(f"1 - {deep}\n")
    with pytest.raises(TaxonomyFormatError, match="at most 256 levels"):
        read_taxonomy(tmp_path / "deep.txt", format="google", missing_parents="create")


def test_trees_as_deep_as_the_cap_still_load(tmp_path):
    lines = ["id,parent_id,name", "0,,Root"] + [f"{i},{i - 1},L{i}" for i in range(1, MAX_DEPTH)]
    (tmp_path / "ok.csv").write_text("\n".join(lines) + "\n")
    assert read_taxonomy(tmp_path / "ok.csv").max_depth == MAX_DEPTH


def test_alias_bomb_in_full_names_is_refused_before_expansion(tmp_path):
    (tmp_path / "full_names.yml").write_text(BOMB)
    with pytest.raises(TaxonomyFormatError, match="aliases") as error:
        read_taxonomy(tmp_path / "full_names.yml", format="full_names")
    assert len(str(error.value)) < 400


def test_alias_bomb_in_a_mapping_file_is_refused(tmp_path):
    text = "input_taxonomy: a\noutput_taxonomy: b\nrules:\n" + BOMB.replace("- id: 1", "- x: 1")
    (tmp_path / "m.yml").write_text(text)
    with pytest.raises(FormatError, match="aliases"):
        read_rules_yaml(tmp_path / "m.yml")


def test_error_messages_quote_a_bounded_excerpt(tmp_path):
    big = "[" + ", ".join(f"'{'v' * 50}{i}'" for i in range(20_000)) + "]"
    (tmp_path / "m.yml").write_text(f"input_taxonomy: a\nrules:\n- input: {big}\n")
    with pytest.raises(FormatError) as error:
        read_rules_yaml(tmp_path / "m.yml")
    assert len(str(error.value)) < 500
    (tmp_path / "full_names.yml").write_text(f"- id: 1\n  name: {big}\n")
    with pytest.raises(TaxonomyFormatError) as error:
        read_taxonomy(tmp_path / "full_names.yml", format="full_names")
    assert len(str(error.value)) < 500


def test_an_empty_taxonomy_is_a_user_error(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("id,parent_id,name\n")
    with pytest.raises(TaxonomyFormatError, match="at least one category"):
        read_taxonomy(tmp_path / "empty.csv")
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title\n1,Mug\n")
    args = ["categorize", str(feed), "--taxonomy", str(tmp_path / "empty.csv")]
    assert main([*args, "-o", str(tmp_path / "o.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "at least one category" in err and "Traceback" not in err
