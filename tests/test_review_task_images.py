"""Image references in Label Studio tasks: URLs pass through, local files through local-files serving."""

from __future__ import annotations

import json

import pytest

from multimodal_cat.cli.main import main
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.predictions import Prediction
from multimodal_cat.products import Product
from multimodal_cat.review import CorrectionError, to_tasks
from multimodal_cat.review.task_images import TaskImageError, TaskImages


@pytest.fixture(autouse=True)
def _no_document_root_from_the_environment(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", raising=False)


def test_web_images_pass_through_and_local_ones_become_local_files_urls(tmp_path):
    refs = TaskImages(image_root=tmp_path / "feeds", document_root=tmp_path)
    assert refs.url("https://cdn.example.com/a.jpg?w=2") == "https://cdn.example.com/a.jpg?w=2"
    assert refs.url("data:image/png;base64,AAAA") == "data:image/png;base64,AAAA"
    assert refs.url("") == ""
    assert refs.url("img/red mug#1.png") == "/data/local-files/?d=feeds/img/red%20mug%231.png"
    assert refs.url(str(tmp_path / "other" / "b.png")) == "/data/local-files/?d=other/b.png"  # absolute
    assert refs.url("../feeds/img/c.png") == "/data/local-files/?d=feeds/img/c.png"  # normalised


def test_a_local_image_outside_the_document_root_is_an_error_naming_both(tmp_path):
    refs = TaskImages(image_root=tmp_path / "feeds", document_root=tmp_path / "served")
    with pytest.raises(TaskImageError, match=r"outside Label Studio's document root .*served"):
        refs.url("img/a.png")
    assert issubclass(TaskImageError, MultimodalCatError) and issubclass(TaskImageError, ValueError)
    with pytest.raises(CorrectionError, match="one prediction per product"):
        to_tasks([Product(id="a")], [])


def test_the_document_root_defaults_to_label_studios_variable_then_the_image_root(tmp_path, monkeypatch):
    assert TaskImages(image_root=tmp_path).root == tmp_path.resolve()
    monkeypatch.setenv("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", str(tmp_path.parent))
    assert TaskImages(image_root=tmp_path).url("a.png") == f"/data/local-files/?d={tmp_path.name}/a.png"


def test_tasks_keep_the_image_source_and_leave_out_an_image_that_cannot_be_served(tmp_path):
    products = [Product(id="a", title="A", image_ref="img/a.png"), Product(id="b", title="B", image_ref="/elsewhere/b.png")]
    guesses = [Prediction("x", "X", 0.5), Prediction("x", "X", 0.5)]
    first, second = to_tasks(products, guesses, images=TaskImages(tmp_path / "feed", tmp_path))
    assert first["data"]["image"] == "/data/local-files/?d=feed/img/a.png"
    assert first["data"]["image_source"] == str((tmp_path / "feed" / "img" / "a.png").resolve())
    assert second["data"]["image"] == "" and "outside" in second["data"]["image_error"]
    assert to_tasks(products[:1], guesses[:1])[0]["data"]["image"] == "img/a.png"  # as given, without images=


def test_review_tasks_says_how_to_serve_the_images_and_counts_those_it_cannot(tmp_path, capsys):
    (tmp_path / "shop").mkdir()
    feed = tmp_path / "shop" / "feed.csv"
    feed.write_text("id,title,image\na,Red mug,img/a.png\nb,Blue mug,/elsewhere/b.png\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    out.write_text("row,category_id,category_path,confidence\n1,aa,Apparel & Accessories,0.2\n"
                   "2,aa,Apparel & Accessories,0.2\n", encoding="utf-8")
    tasks = tmp_path / "tasks.json"
    assert main(["review", "tasks", str(feed), str(out), "--taxonomy", "shopify", "--document-root",
                 str(tmp_path), "-o", str(tasks)]) == 0
    err = capsys.readouterr().err
    assert "1 of 2 tasks have no image: image /elsewhere/b.png is outside" in err
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={tmp_path.resolve()}" in err
    assert f"Local files source storage on {(tmp_path / 'shop' / 'img').resolve()}" in err
    assert [t["data"]["image"] for t in json.loads(tasks.read_text())] == ["/data/local-files/?d=shop/img/a.png", ""]
