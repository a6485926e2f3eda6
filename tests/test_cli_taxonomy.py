"""Tests for ``multimodal-cat taxonomy`` (show, search, map, stats)."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import pytest

from multimodal_cat.cli.main import main


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "show", "aa-1-1"]) == 0
    out = capsys.readouterr().out
    assert "path:       Apparel & Accessories > Clothing > Activewear" in out
    assert "parent:     aa-1  Clothing" in out and "aa-1-1-1  Activewear Pants" in out
    assert "attributes:" in out and "target_gender" in out


def test_show_by_path_in_google(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "taxonomy",
                "show",
                "apparel & accessories > clothing > activewear",
                "--taxonomy",
                "google",
            ]
        )
        == 0
    )
    assert "id:         5322" in capsys.readouterr().out


def test_show_errors_are_plain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "show", "zz-9"]) == 2
    assert "no category with id or path 'zz-9'" in capsys.readouterr().err
    assert main(["taxonomy", "show", "1", "--taxonomy", "amazon"]) == 2
    err = capsys.readouterr().err
    assert "unknown taxonomy 'amazon'" in err and "Traceback" not in err


def test_search(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "search", "activewear", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("aa-1-1\t")
    assert main(["taxonomy", "search", "qwertyzz"]) == 1


def test_map_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "map", "aa-1-1", "--from", "shopify", "--to", "google"]) == 0
    assert (
        capsys.readouterr().out
        == "aa-1-1\t5322\tApparel & Accessories > Clothing > Activewear\t(published)\n"
    )


def test_map_jsonl_with_failures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "map", "aa-1-1", "se-1", "nope", "--format", "jsonl"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["provenance"] for r in records] == ["published", "unmapped", "not found"]
    assert "2 of 3 ids could not be mapped" in captured.err


def test_map_csv_from_file_composes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("1\n1397\n")
    code = main(
        [
            "taxonomy",
            "map",
            "--file",
            str(ids),
            "--from",
            "shopify/2022-02",
            "--to",
            "google",
            "--format",
            "csv",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "source_id,target_ids,target_paths,provenance,confidence"
    assert lines[1] == "1,1,Animals & Pet Supplies,published,1.0"


def test_map_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("aa-1-1\n\naa-1\n"))
    assert main(["taxonomy", "map", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_map_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "map"]) == 2
    assert "expected category ids" in capsys.readouterr().err
    assert main(["taxonomy", "map", "--file", str(tmp_path / "absent.txt")]) == 2
    assert "cannot read ids" in capsys.readouterr().err
    assert main(["taxonomy", "map", "1", "--from", "ebay"]) == 2
    assert "unknown taxonomy 'ebay'" in capsys.readouterr().err


def test_stats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy", "stats", "--taxonomy", "google"]) == 0
    out = capsys.readouterr().out
    assert "categories:  5595" in out and "depth:       1-7" in out and "leaves:      4719" in out


def test_help_and_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["taxonomy"]) == 2
    assert "examples:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["taxonomy", "map", "--help"])
    assert info.value.code == 0 and "--from shopify/2022-02" in capsys.readouterr().out


def test_align_subcommand_is_plugged_in(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = types.ModuleType("multimodal_cat.cli.align")

    def add_parser(subparsers) -> None:
        parser = subparsers.add_parser("align", help="fake align")
        parser.set_defaults(func=lambda args: print("aligned") or 0)

    fake.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "multimodal_cat.cli.align", fake)
    assert main(["taxonomy", "align"]) == 0
    assert capsys.readouterr().out == "aligned\n"
