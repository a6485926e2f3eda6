"""Hostile pass two, input files: tree names that would break paths or XML, duplicate feed
columns, UTF-16 feeds, a BOM inside the file, bare CRs (issue 22, small items)."""

from __future__ import annotations

import json
import logging

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.errors import FormatError
from multimodal_cat.feeds.columns import read_products
from multimodal_cat.taxonomy import Taxonomy


def _tree(tmp_path, rows, name="tree.csv"):
    path = tmp_path / name
    path.write_bytes(("id,parent_id,name\n" + "".join(f"{r}\n" for r in rows)).encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("bad", "expected"),
    [("Kitchen > Mugs", "' > '"), ("Pa\x01ns", "control characters"), ("Pa\x1bns", "control characters")],
)
def test_tree_names_that_break_paths_or_xml_are_refused_with_the_line(tmp_path, capsys, bad, expected):
    tree = _tree(tmp_path, ["1,,Apparel", "2,1,Shirts", f"3,,{bad}"])
    with pytest.raises(FormatError, match=expected) as caught:
        Taxonomy.load(str(tree))
    assert caught.value.line == 4
    assert main(["review", "config", "--taxonomy", str(tree), "-o", str(tmp_path / "c.xml")]) == 2
    err = capsys.readouterr().err
    assert "tree.csv:4: expected a name without" in err and expected in err
    assert not (tmp_path / "c.xml").exists()


def test_id_path_trees_with_control_characters_are_refused(tmp_path):
    path = tmp_path / "paths.csv"
    path.write_text("id,path\n1,Apparel\n2,Apparel > Sh\x02irts\n", encoding="utf-8")
    with pytest.raises(FormatError, match="control characters") as caught:
        Taxonomy.load(str(path))
    assert caught.value.line == 3


def test_trees_built_in_code_refuse_such_names_too():
    with pytest.raises(FormatError, match="' > '"):
        Taxonomy.from_records([("1", None, "A > B")])


def test_duplicate_sibling_names_are_warned_about(tmp_path, caplog):
    tree = _tree(tmp_path, ["1,,Apparel", "2,1,Shirts", "3,1,Shirts"])
    with caplog.at_level(logging.WARNING):
        Taxonomy.load(str(tree))
    assert "'Apparel > Shirts' (ids 2, 3)" in caplog.text


def test_review_config_of_a_valid_tree_parses(tmp_path):
    import xml.etree.ElementTree as ET

    tree = _tree(tmp_path, ["1,,Apparel & Co", "2,1,<Shirts>", '3,1,"Shoes ""best"""'])
    out = tmp_path / "c.xml"
    assert main(["review", "config", "--taxonomy", str(tree), "-o", str(out)]) == 0
    ET.parse(out)


def test_duplicate_feed_columns_are_refused(tmp_path, capsys):
    feed = tmp_path / "feed.csv"
    feed.write_text("id,title,title\n1,Blue shirt,Red\n2,Mug,Cup\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["categorize", str(feed), "--dry-run", "--no-progress", "-o", str(out)]) == 2
    assert "found 'title' twice (columns 2 and 3)" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [("u16.csv", "id,title\n1,Blue shirt\n".encode("utf-16")),
     ("u16be.csv", "id,title\n1,Blue shirt\n".encode("utf-16-be")),
     ("u16.jsonl", '{"id": 1, "title": "a"}\n'.encode("utf-16")),
     ("u32.csv", "id,title\n1,Blue shirt\n".encode("utf-32"))],
    ids=["utf-16-bom", "utf-16-be-no-bom", "utf-16-jsonl", "utf-32"],
)
def test_utf16_feeds_are_refused_with_the_conversion(tmp_path, capsys, name, data):
    feed = tmp_path / name
    feed.write_bytes(data)
    out = tmp_path / "out.csv"
    assert main(["categorize", str(feed), "--dry-run", "--no-progress", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expected UTF-8 text; found UTF-16" in err and "iconv" in err and not out.exists()


def test_a_bom_inside_the_file_is_not_kept_in_the_id(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_bytes(b"\xef\xbb\xbfid,title\n1,Blue shirt\n\xef\xbb\xbf2,Mug\n")  # two files concatenated
    assert [p.id for _, p, _ in read_products(feed)] == ["1", "2"]


def test_a_bare_cr_does_not_split_a_record(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_bytes(b'id,title,description\r\n1,Blue\rshirt,"soft\rcotton"\r\n2,Mug,\r\n')
    rows = list(read_products(feed))
    assert [(n, p.id, p.title, error) for n, p, error in rows] == [(1, "1", "Blue shirt", None), (2, "2", "Mug", None)]
    assert rows[0][1].description == "soft cotton"


def test_a_classic_mac_file_still_reads(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_bytes(b"id,title\r1,Blue shirt\r2,Mug\r")
    assert [(p.id, p.title) for _, p, _ in read_products(feed)] == [("1", "Blue shirt"), ("2", "Mug")]


def test_jsonl_with_a_bom_inside_reads(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b'{"id": "1", "title": "a"}\n\xef\xbb\xbf{"id": "2", "title": "b"}\n')
    assert [p.id for _, p, _ in read_products(feed)] == ["1", "2"]


def test_taxonomy_map_file_that_is_not_utf8_exits_2(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"aa-1\n\xff\xfe\n")
    assert main(["taxonomy", "map", "--file", str(ids)]) == 2
    err = capsys.readouterr().err
    assert "expected UTF-8 text, found byte 0xff" in err and "Traceback" not in err


def test_train_corrections_that_are_not_utf8_are_a_correction_error(tmp_path):
    from multimodal_cat.review import CorrectionError, read_corrections

    path = tmp_path / "corrections.jsonl"
    path.write_bytes(b'{"product_id": "\xff", "action": "skipped"}\n')
    with pytest.raises(CorrectionError, match="UTF-8"):
        read_corrections(path)


def test_yaml_tags_in_mapping_values_are_a_format_error(tmp_path):
    from multimodal_cat.mapping.errors import MappingFormatError
    from multimodal_cat.mapping.rules_io import read_rules_yaml

    path = tmp_path / "rules.yml"
    path.write_text("rules:\n- input:\n    product_category_id: aa-1\n  output:\n    product_category_id:\n"
                    '    - !!python/object/apply:os.system ["echo hi"]\n', encoding="utf-8")
    with pytest.raises(MappingFormatError, match="python/object/apply"):
        read_rules_yaml(path)


def test_a_json_key_given_twice_is_warned_about_with_the_line(tmp_path, capsys):
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"id": "1", "title": "Mug"}\n{"id": "2", "title": "a", "title": "Blue shirt"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["categorize", str(feed), "--dry-run", "--no-progress", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["warnings"] == []
    assert rows[1]["warnings"] == ["line 2: key(s) 'title' given twice in one object; the last value is used"]


def test_a_tree_field_over_the_csv_limit_is_a_format_error_with_the_line(tmp_path, capsys):
    tree = _tree(tmp_path, ["1,,Apparel", "2,1," + "x" * 400_000])
    assert main(["review", "config", "--taxonomy", str(tree), "-o", str(tmp_path / "c.xml")]) == 2
    err = capsys.readouterr().err
    # the csv module reads it (its field limit is the feeds' 8 MiB line): the name is refused
    assert "tree.csv:3: expected a name of at most 1,000 characters" in err and "Traceback" not in err
