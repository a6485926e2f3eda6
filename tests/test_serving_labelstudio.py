"""The service as Label Studio's ML backend: its endpoints alone, then the round trip through a
real Label Studio on 127.0.0.1 (connected as the project's model, asked for predictions, read
back from its API; an annotation's webhook appends a correction).

The real server is found as in tests/test_review_labelstudio_server.py (``$LABEL_STUDIO_BIN``,
the PATH, or the venv `.ci/run` makes); with ``MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO`` set a
missing one fails instead of skipping.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from multimodal_cat.feeds.rows import OutputRows  # noqa: E402
from multimodal_cat.predictions import CategoryScore, Prediction  # noqa: E402
from multimodal_cat.review import labeling_config, read_corrections  # noqa: E402
from multimodal_cat.serving.app import create_app  # noqa: E402
from multimodal_cat.serving.server import running  # noqa: E402
from multimodal_cat.serving.service import Engine, Service  # noqa: E402
from multimodal_cat.serving.settings import ServeSettings  # noqa: E402
from multimodal_cat.taxonomy import Taxonomy  # noqa: E402
from tests.labelstudio_server import running_label_studio  # noqa: E402

TREE = Taxonomy.from_paths(
    ["Toys > Construction Sets", "Toys > Dolls", "Hardware > Masonry > Bricks"],
    ids=["t-1", "t-2", "h-1-1"],
    name="tiny",
)


class KeywordPredictor:
    """Dolls for titles naming a doll, construction sets otherwise; records batch sizes."""

    taxonomy = TREE

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, products, *, top_k=5, min_confidence=None):
        self.batches.append(len(products))
        out = []
        for product in products:
            doll = "doll" in product.title.lower()
            best, other = ("t-2", "t-1") if doll else ("t-1", "t-2")
            alternatives = [CategoryScore(best, TREE[best].full_path, 0.8), CategoryScore(other, TREE[other].full_path, 0.15)]
            out.append(Prediction(best, TREE[best].full_path, 0.8, alternatives=alternatives))
        return out


@contextmanager
def backend(tmp_path: Path, **settings):
    predictor = KeywordPredictor()
    corrections = tmp_path / "corrections.jsonl"
    service = Service(
        lambda: Engine(OutputRows(predictor), TREE, "multimodal-cat-test"),
        ServeSettings(corrections=corrections, **settings),
    )
    with running(create_app(service)) as url:
        for _ in range(500):
            if httpx.get(url + "/readyz").status_code == 200:
                break
            time.sleep(0.01)
        yield url, predictor, corrections


def _task(product_id: str, title: str, **data) -> dict:
    return {"id": 7, "data": {"id": product_id, "title": title, **data}}


def test_health_setup_and_predict_in_the_taxonomy_format(tmp_path):
    with backend(tmp_path) as (url, predictor, _):
        assert httpx.get(url + "/health").json()["status"] == "UP"
        setup = httpx.post(url + "/setup", json={"project": "1.1700000000", "schema": labeling_config(TREE)})
        assert setup.json() == {"model_version": "multimodal-cat-test"}
        tasks = [
            _task("a", "Barbie fashion doll", image="/data/upload/1/doll.png"),  # LS-stored image: text only
            _task("b", "LEGO bricks box"),
            {"id": 9, "data": {"id": "c"}},  # nothing to categorize
        ]
        answer = httpx.post(url + "/predict", json={"tasks": tasks, "project": "1.1700000000"}).json()
    first, second, empty = answer["results"]
    assert first["result"] == [{
        "from_name": "category", "to_name": "title", "type": "taxonomy",
        "value": {"taxonomy": [["Toys", "Dolls"]]}, "score": 0.8,
    }]
    assert first["score"] == 0.8 and first["model_version"] == "multimodal-cat-test"
    assert second["result"][0]["value"]["taxonomy"] == [["Toys", "Construction Sets"]]
    assert empty["result"] == []
    assert predictor.batches == [2]  # the tasks of one request share a predictor call


def test_the_webhook_appends_corrections(tmp_path):
    annotation = {
        "id": 3, "completed_by": 1, "updated_at": "2026-12-06T12:00:00Z", "was_cancelled": False,
        "result": [{"from_name": "category", "to_name": "title", "type": "taxonomy",
                    "value": {"taxonomy": [["Hardware", "Masonry", "Bricks"]]}}],
    }
    task = {"id": 7, "data": {"id": "lego-1", "title": "LEGO", "suggested_id": "t-1"}}
    with backend(tmp_path) as (url, _, corrections):
        created = httpx.post(url + "/webhook", json={"action": "ANNOTATION_CREATED", "task": task, "annotation": annotation})
        ignored = httpx.post(url + "/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 1}})
        wrong = httpx.post(url + "/webhook", json={"action": "ANNOTATION_UPDATED", "task": {"id": 1, "data": {"id": "x"}},
                                                   "annotation": {**annotation, "result": [{"from_name": "category", "value": {"taxonomy": [["Nope"]]}}]}})
    assert created.json() == {"status": "ok", "corrections": 1}
    assert ignored.json()["status"] == "ignored"
    assert wrong.status_code == 422 and "expected a category of the tree 'tiny'" in wrong.json()["detail"]
    (correction,) = read_corrections(corrections)
    assert (correction.product_id, correction.action, correction.category_id) == ("lego-1", "changed", "h-1-1")


def test_backend_endpoints_take_the_api_key_as_label_studio_sends_it(tmp_path):
    import base64

    with backend(tmp_path, api_key="k-9") as (url, _, _corrections):
        body = {"tasks": [_task("a", "doll")]}
        assert httpx.post(url + "/predict", json=body).status_code == 401
        basic = base64.b64encode(b"label-studio:k-9").decode()
        assert httpx.post(url + "/predict", json=body, headers={"Authorization": f"Basic {basic}"}).status_code == 200
        assert httpx.post(url + "/predict", content=b"{oops", headers={"X-API-Key": "k-9"}).status_code == 400
        assert httpx.post(url + "/predict", json={"task": []}, headers={"X-API-Key": "k-9"}).status_code == 422
        assert httpx.get(url + "/health").status_code == 200  # health stays open


# --- the round trip through a real Label Studio --------------------------------------------

@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    env = {"ML_BLOCK_LOCAL_IP": "false",  # the ML backend runs on 127.0.0.1 beside it
           "SSRF_PROTECTION_ENABLED": "false"}  # so do its webhooks
    with running_label_studio(tmp_path_factory.mktemp("label-studio-ml"), env) as client:
        yield client


@pytest.mark.labelstudio
def test_label_studio_gets_live_predictions_and_sends_annotations_back(label_studio, tmp_path):
    ls = label_studio
    with backend(tmp_path) as (url, predictor, corrections):
        project = ls.create_project("Live pre-annotations", labeling_config(TREE, images=False))
        backend_id = ls._call("POST", "/api/ml", {"url": url, "project": project, "title": "multimodal-cat"})["id"]
        assert backend_id > 0  # Label Studio called /health and /setup to accept it
        tasks = [{"data": {"id": "doll-1", "title": "Barbie fashion doll", "description": "", "seller_category": "", "candidates": ""}},
                 {"data": {"id": "lego-2", "title": "LEGO Classic bricks", "description": "", "seller_category": "", "candidates": ""}}]
        assert ls.import_tasks(project, tasks) == 2
        ls._call("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                 {"selectedItems": {"all": True, "excluded": []}})
        got = {}
        for task_id in ls.task_ids(project):
            task = ls._call("GET", f"/api/tasks/{task_id}")
            (prediction,) = task["predictions"]
            got[task["data"]["id"]] = (prediction["result"][0]["value"]["taxonomy"], prediction["score"],
                                       prediction["model_version"])
        assert got == {
            "doll-1": ([["Toys", "Dolls"]], 0.8, "multimodal-cat-test"),
            "lego-2": ([["Toys", "Construction Sets"]], 0.8, "multimodal-cat-test"),
        }
        assert sum(predictor.batches) == 2
        # A reviewer's answer reaches the service through the webhook Label Studio made for it.
        doll_task = ls.task_ids(project)[0]
        answer = [{"from_name": "category", "to_name": "title", "type": "taxonomy",
                   "value": {"taxonomy": [["Hardware", "Masonry", "Bricks"]]}}]
        ls.annotate(doll_task, answer)
        stop = time.monotonic() + 60
        while not (corrections.exists() and corrections.read_text().strip()) and time.monotonic() < stop:
            time.sleep(0.2)
        lines = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert [(c["product_id"], c["action"], c["category_id"]) for c in lines] == [("doll-1", "changed", "h-1-1")]
