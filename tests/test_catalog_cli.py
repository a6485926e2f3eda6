"""``multimodal-cat index``, ``similar`` and ``audit`` on small feeds with the tiny encoders:
bad rows, an empty feed, another encoder, an unreadable query image, an unknown branch."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from catalog_helpers import swatch

from multimodal_cat.catalog.embed import CatalogEncoders
from multimodal_cat.catalog.index import CatalogIndex, CatalogIndexError
from multimodal_cat.catalog.similar import QueryImageError, similar
from multimodal_cat.cli.main import main

COLOURS = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (220, 220, 40), (120, 20, 160)]


@pytest.fixture
def feed(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    rows = []
    for i, colour in enumerate(COLOURS):
        swatch(colour, stripe=i * 5).save(tmp_path / f"p{i}.png")
        category = "Apparel > Shoes" if i % 2 else "Home > Kitchen"
        rows.append({"sku": f"p{i}", "title": f"product number {i}", "image": f"p{i}.png",
                     "curated": category, "seller": f"s{i % 2}"})
    rows.append({"sku": "dup", "title": "product number 0", "image": "p0.png",
                 "curated": "Home > Kitchen", "seller": "s1"})
    rows.append({"sku": "bad", "title": "", "image": "", "curated": "", "seller": ""})
    path = tmp_path / "feed.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _build(feed: Path, encoders: tuple[str, str], out: Path, capsys) -> str:
    vit, bert = encoders
    code = main(["index", "build", str(feed), "-o", str(out), "--text-encoder", bert,
                 "--image-encoder", vit, "--column", "id=sku", "--category-column", "curated"])
    assert code == 0
    return capsys.readouterr().err


def test_build_similar_add_remove(feed, tiny_encoders, tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    err = _build(feed, tiny_encoders, out, capsys)
    assert "row 7 (id 'bad') not indexed" in err and "indexed 6 products" in err
    assert set(CatalogIndex.load(out).kind_probes) == {"text", "image"}  # learnt at build
    # a shopper's photo alone: the same photo comes first
    assert main(["similar", str(out), "--image", str(tmp_path / "p3.png"), "-k", "3"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["id"].iloc[0] == "p3" and table["kind"].iloc[0] == "image"
    assert len(table) == 3
    assert main(["similar", str(out), "--id", "p0", "--within", "Home"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["id"].iloc[0] == "dup" and set(table["category"]) == {"Home > Kitchen"}
    assert "p0" not in set(table["id"])
    assert main(["similar", str(out), "--title", "product number 1", "--image",
                 str(tmp_path / "p1.png"), "-k", "1"]) == 0
    assert "p1" in capsys.readouterr().out
    # the Python entry point: an index folder and a photo alone
    table = similar(out, image=tmp_path / "p3.png", k=2)
    assert table["id"].iloc[0] == "p3" and list(table.columns)[:3] == ["rank", "id", "score"]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(QueryImageError, match="cannot read the query image"):
        similar(out, image=tmp_path / "broken.jpg")
    # add and remove
    extra = tmp_path / "more.csv"
    pd.DataFrame([{"sku": "n1", "title": "new product", "image": "p2.png",
                   "curated": "Apparel > Hats"}]).to_csv(extra, index=False)
    args = ["index", "add", str(out), str(extra), "--column", "id=sku", "--category-column",
            "curated"]
    assert main(args) == 0
    assert main(["index", "remove", str(out), "p4", "dup"]) == 0
    index = CatalogIndex.load(out)
    assert "n1" in index and "p4" not in index and len(index) == 5
    assert "Apparel > Hats" in index.kind_probes["image"].classes  # learnt again at add
    assert main(["similar", str(out), "--id", "p2", "--within", "apparel > hats"]) == 0
    assert "n1" in capsys.readouterr().out


def test_user_mistakes_exit_2(feed, tiny_encoders, tmp_path, capsys) -> None:
    out = tmp_path / "idx"
    _build(feed, tiny_encoders, out, capsys)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    assert main(["similar", str(out), "--image", str(broken)]) == 2
    assert "cannot read the query image" in capsys.readouterr().err
    assert main(["similar", str(out), "--image", str(tmp_path / "missing.jpg")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["similar", str(out), "--id", "p1", "--within", "Garden > Tools"]) == 2
    assert "no branch of the index's tree has that path" in capsys.readouterr().err
    assert main(["similar", str(out), "--id", "nope"]) == 2
    assert "not in the index" in capsys.readouterr().err
    assert main(["similar", str(tmp_path), "--id", "p1"]) == 2
    assert "expected a catalog index folder" in capsys.readouterr().err
    assert main(["index", "remove", str(out), "nope"]) == 2


def test_index_built_with_another_encoder_is_refused(
    feed, tiny_encoders, tiny_text_dir, tmp_path, capsys
) -> None:
    out = tmp_path / "idx"
    _build(feed, tiny_encoders, out, capsys)
    other = tmp_path / "other-bert"
    shutil.copytree(tiny_text_dir, other)
    index = CatalogIndex.load(out)
    encoders = CatalogEncoders.from_names(str(other), None)
    with pytest.raises(CatalogIndexError, match="made with encoder"):
        similar(index, title="product", encoders=encoders)
    code = main(["audit", str(feed), "-o", str(tmp_path / "rep"), "--reference", str(out),
                 "--text-encoder", str(other), "--image-encoder", tiny_encoders[0],
                 "--column", "id=sku", "--checks", "categories"])
    assert code == 2 and "made with encoder" in capsys.readouterr().err


def test_empty_feed(tiny_encoders, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MULTIMODAL_CAT_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty.csv"
    empty.write_text("sku,title,image,curated\n")
    out = tmp_path / "idx"
    _build(empty, tiny_encoders, out, capsys)
    assert len(CatalogIndex.load(out)) == 0
    assert main(["similar", str(out), "--title", "anything"]) == 0
    assert capsys.readouterr().out.startswith("rank,id,score")
    vit, bert = tiny_encoders
    assert main(["audit", str(empty), "-o", str(tmp_path / "rep"), "--text-encoder", bert,
                 "--image-encoder", vit]) == 0
    assert "No findings" in (tmp_path / "rep" / "report.html").read_text()


def test_audit_writes_report_with_bad_rows(feed, tiny_encoders, tmp_path, capsys) -> None:
    vit, bert = tiny_encoders
    rep = tmp_path / "rep"
    code = main(["audit", str(feed), "-o", str(rep), "--checks", "duplicates,reuse",
                 "--text-encoder", bert, "--image-encoder", vit, "--column", "id=sku",
                 "--category-column", "curated"])
    assert code == 0
    findings = pd.read_csv(rep / "findings.csv")
    duplicate = findings[findings["check"] == "duplicates"]
    # tiny random encoders find most swatches alike; the identical pair must be in a group
    assert any({"p0", "dup"} <= set(json.loads(ids)) for ids in duplicate["ids"])
    assert list(findings[findings["check"] == "input"]["ids"]) == ['["bad"]']
    page = (rep / "report.html").read_text()
    assert "data:image/jpeg;base64," in page and "http" not in page.split("<body>")[1]
    assert len((rep / "findings.jsonl").read_text().splitlines()) == len(findings)


def test_cli_mistake_has_no_traceback(tmp_path) -> None:
    env = {**os.environ, "MULTIMODAL_CAT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "multimodal_cat", "similar", str(tmp_path), "--id", "x"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "expected a catalog index folder" in done.stderr


def test_audit_with_a_checkpoint_uses_its_predictions(
    feed, tiny_encoders, tiny_checkpoint, tmp_path, capsys
) -> None:
    vit, bert = tiny_encoders
    rep = tmp_path / "rep"
    code = main(["audit", str(feed), "-o", str(rep), "--checks", "images,categories",
                 "--model", str(tiny_checkpoint), "--text-encoder", bert, "--image-encoder", vit,
                 "--column", "id=sku", "--category-column", "curated"])
    assert code == 0, capsys.readouterr().err
    findings = pd.read_csv(rep / "findings.csv")
    assert set(findings["check"]) <= {"images", "categories", "input"}
    assert main(["audit", str(feed), "-o", str(rep), "--model", str(tmp_path / "nope")]) == 2


def test_index_build_with_a_checkpoints_towers(feed, tiny_checkpoint, tiny_encoders, tmp_path,
                                               capsys) -> None:
    out = tmp_path / "idx"
    assert main(["index", "build", str(feed), "-o", str(out), "--model", str(tiny_checkpoint),
                 "--column", "id=sku", "--category-column", "curated"]) == 0
    capsys.readouterr()
    index = CatalogIndex.load(out)
    assert index.encoders["text"].startswith("text:tower-")
    assert index.encoders["image"].startswith("image:tower-")
    assert index.specs["text"] == {"checkpoint": str(tiny_checkpoint)}
    # queries are encoded by the same towers, loaded again from the index's record
    assert main(["similar", str(out), "--image", str(tmp_path / "p3.png"), "-k", "2"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["id"].iloc[0] == "p3"
    # an index built with the plain encoders refuses a checkpoint's query vectors
    plain = tmp_path / "plain"
    _build(feed, tiny_encoders, plain, capsys)
    with pytest.raises(CatalogIndexError, match="made with encoder"):
        similar(plain, title="product", encoders=CatalogEncoders.from_checkpoint(tiny_checkpoint))


def test_index_build_with_a_missing_checkpoint_exits_2(feed, tmp_path, capsys) -> None:
    code = main(["index", "build", str(feed), "-o", str(tmp_path / "i"), "--model",
                 str(tmp_path / "nowhere")])
    assert code == 2
    assert "cannot load the model" in capsys.readouterr().err
