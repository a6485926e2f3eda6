"""The Label Studio round trip against a real server on 127.0.0.1.

Label Studio is installed in its own virtual environment (it pins Django and friends); the
test finds its ``label-studio`` program through ``$LABEL_STUDIO_BIN`` or the PATH. `.ci/run`
installs it and sets ``MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO=1``, so in CI a missing server is a
failure, not a skip.
"""

from __future__ import annotations

import pytest

from multimodal_cat.predictions import CategoryScore, Prediction
from multimodal_cat.products import Product
from multimodal_cat.review import apply_corrections, labeling_config, read_export, to_tasks
from multimodal_cat.review.labelstudio_client import LabelStudioClient, LabelStudioError
from multimodal_cat.taxonomy import Taxonomy
from tests.labelstudio_server import running_label_studio

pytestmark = pytest.mark.labelstudio


@pytest.fixture(scope="module")
def document_root(tmp_path_factory):
    """The folder the server serves local files from (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)."""
    return tmp_path_factory.mktemp("documents").resolve()


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory, document_root):
    env = {"LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root)}
    with running_label_studio(tmp_path_factory.mktemp("label-studio"), env) as client:
        yield client


TREE = Taxonomy.from_paths(
    ["Toys > Construction Sets", "Toys > Dolls", "Hardware > Masonry > Bricks"],
    ids=["t-1", "t-2", "h-1-1"],
    name="tiny",
)


def _prediction(category_id: str, confidence: float) -> Prediction:
    path = TREE[category_id].full_path
    return Prediction(category_id, path, confidence, alternatives=[CategoryScore(category_id, path, confidence)])


def _answer(path: list[str]) -> list[dict]:
    return [{"from_name": "category", "to_name": "title", "type": "taxonomy", "value": {"taxonomy": [path]}}]


def test_round_trip_through_a_real_label_studio(label_studio):
    products = [
        Product(id="lego-1", title="LEGO Classic Creative Bricks"),
        Product(id="doll-2", title="Barbie fashion doll"),
        Product(id="pot-3", title="Ceramic plant pot"),
        Product(id="new-4", title="Not reviewed yet"),
    ]
    predictions = [_prediction("h-1-1", 0.55), _prediction("t-2", 0.7), _prediction("t-1", 0.3),
                   _prediction("t-1", 0.4)]
    project = label_studio.create_project("Review round 1", labeling_config(TREE))
    assert label_studio.import_tasks(project, to_tasks(products, predictions)) == 4
    tasks = label_studio.task_ids(project)
    label_studio.annotate(tasks[0], _answer(["Toys", "Construction Sets"]))  # changed
    label_studio.annotate(tasks[1], _answer(["Toys", "Dolls"]))  # accepted
    label_studio.annotate(tasks[2], [], skipped=True)  # skipped
    export = label_studio.export(project)
    got = {c.product_id: (c.action, c.category_id) for c in read_export(export, TREE)}
    assert got == {"lego-1": ("changed", "t-1"), "doll-2": ("accepted", "t-2"), "pot-3": ("skipped", "")}
    # The export keeps the pre-annotation the reviewer saw, with its score.
    first = next(t for t in export if t["data"]["id"] == "lego-1")
    assert first["annotations"][0]["prediction"]["score"] == pytest.approx(0.55)
    # A correction changes the label the next training run sees.
    rows = apply_corrections([{"id": "lego-1", "category": "h-1-1"}], read_export(export, TREE))
    assert rows[0]["category"] == "Toys > Construction Sets"


def test_a_shipped_tree_is_accepted_as_a_labeling_configuration(label_studio):
    shopify = Taxonomy.load("shopify")
    project = label_studio.create_project("Shopify review", labeling_config(shopify))
    assert project > 0


def test_a_wrong_token_is_a_clear_error(label_studio):
    bad = LabelStudioClient(label_studio.url, "0" * 40)
    with pytest.raises(LabelStudioError, match="HTTP 401"):
        bad.create_project("Nope project", labeling_config(TREE))


def test_review_tasks_images_are_served_by_label_studio(label_studio, document_root, monkeypatch, capsys):
    """`review tasks` names a feed's local image so that Label Studio hands its bytes back."""
    import csv
    import json

    from PIL import Image

    from multimodal_cat.cli.main import main

    catalog = document_root / "catalog"
    (catalog / "images").mkdir(parents=True)
    Image.new("RGB", (24, 16), "red").save(catalog / "images" / "red mug.png")
    web = "https://cdn.example.com/brick.jpg"
    (catalog / "feed.csv").write_text(f"id,title,image\nmug,Red mug,images/red mug.png\nbrick,Clay brick,{web}\n")
    with open(catalog / "out.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "category_id", "category_path", "confidence"])
        writer.writerows([(1, "t-1", TREE["t-1"].full_path, 0.4), (2, "h-1-1", TREE["h-1-1"].full_path, 0.3)])
    tree = catalog / "tree.csv"
    tree.write_text("id,path\n" + "".join(f"{c.id},{c.full_path}\n" for c in TREE))
    monkeypatch.chdir(document_root.parent)  # relative paths must not depend on where one runs
    command = ["review", "tasks", str(catalog / "feed.csv"), str(catalog / "out.csv"), "--taxonomy", str(tree),
               "--document-root", str(document_root), "-o", str(catalog / "tasks.json")]
    assert main(command) == 0
    assert f"Local files source storage on {catalog / 'images'}" in capsys.readouterr().err
    tasks = json.loads((catalog / "tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=catalog/images/red%20mug.png"
    assert tasks[1]["data"]["image"] == web  # web images pass through
    project = label_studio.create_project("Images", labeling_config(TREE))
    label_studio.add_local_storage(project, str(catalog / "images"))
    assert label_studio.import_tasks(project, tasks) == 2
    stored = label_studio._call("GET", f"/api/tasks?project={project}&page_size=10")["tasks"]
    shown = next(t["data"]["image"] for t in stored if t["data"]["id"] == "mug")
    assert label_studio.fetch(shown) == (catalog / "images" / "red mug.png").read_bytes()
