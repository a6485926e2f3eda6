"""No command writes over a file it reads (issue 22, item 6): one check, run before every
command, compares each output with every existing file named by the other arguments."""

from __future__ import annotations

import os

import pytest

from multimodal_cat.cli.main import main

TREE = "id,parent_id,name\n1,,Apparel\n2,1,Shirts\n3,1,Shoes\n4,,Kitchen\n5,4,Mugs\n6,4,Pans\n"
SMALL = "id,title\n1,Blue shirt\n2,Mug\n"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tree.csv").write_text(TREE)
    (tmp_path / "small.csv").write_text(SMALL)
    (tmp_path / "hold.csv").write_text("id,title,category\n1,Blue shirt,2\n")
    (tmp_path / "out.csv").write_text("row,id,status\n1,1,ok\n")
    (tmp_path / "export.json").write_text("[]")
    return tmp_path


CASES = {
    "categorize over --taxonomy": (
        ["categorize", "small.csv", "--taxonomy", "tree.csv", "-o", "tree.csv"],
        "tree.csv",
    ),
    "categorize over --holdout": (
        [
            "categorize",
            "small.csv",
            "--taxonomy",
            "tree.csv",
            "--target-precision",
            "0.9",
            "--holdout",
            "hold.csv",
            "-o",
            "hold.csv",
        ],
        "hold.csv",
    ),
    "categorize over the feed by another name": (
        ["categorize", "small.csv", "--dry-run", "-o", "./sub/../small.csv"],
        "small.csv",
    ),
    "review tasks over the feed": (
        ["review", "tasks", "small.csv", "out.csv", "--taxonomy", "tree.csv", "-o", "small.csv"],
        "small.csv",
    ),
    "review tasks over the predictions": (
        ["review", "tasks", "small.csv", "out.csv", "--taxonomy", "tree.csv", "-o", "out.csv"],
        "out.csv",
    ),
    "review config over the tree": (
        ["review", "config", "--taxonomy", "tree.csv", "-o", "tree.csv"],
        "tree.csv",
    ),
    "suggest over the pool": (
        ["suggest", "small.csv", "--taxonomy", "tree.csv", "-o", "small.csv"],
        "small.csv",
    ),
    "review import over the export": (
        ["review", "import", "export.json", "--taxonomy", "tree.csv", "-o", "export.json"],
        "export.json",
    ),
    "align over the source": (
        ["taxonomy", "align", "tree.csv", "shopify", "-o", "tree.csv"],
        "tree.csv",
    ),
    "align's review over the source": (
        ["taxonomy", "align", "tree.csv", "shopify", "-o", "map.yml", "--review", "tree.csv"],
        "tree.csv",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_over_an_input_is_refused_and_the_input_kept(files, capsys, case):
    argv, victim = CASES[case]
    (files / "sub").mkdir(exist_ok=True)
    before = (files / victim).read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "would destroy that input" in err and "Traceback" not in err
    assert (files / victim).read_bytes() == before


def test_a_hard_link_to_an_input_is_the_same_file(files, capsys):
    os.link(files / "tree.csv", files / "alias.csv")
    argv = ["review", "config", "--taxonomy", "tree.csv", "-o", "alias.csv"]
    assert main(argv) == 2
    assert "given to --taxonomy" in capsys.readouterr().err


def test_other_outputs_are_written(files, capsys):
    assert main(["review", "config", "--taxonomy", "tree.csv", "-o", "config.xml"]) == 0
    assert (files / "config.xml").read_text().startswith("<View")
