"""The service as Label Studio's ML backend: its endpoints alone, then the round trip through a
real Label Studio on 127.0.0.1 (connected as the project's model, asked for predictions, read
back from its API; an annotation's webhook appends a correction).

The real server is found as in tests/test_review_labelstudio_server.py (``$LABEL_STUDIO_BIN``,
the PATH, or the venv `.ci/run` makes); with ``MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO`` set a
missing one fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from multimodal_cat.feeds.rows import OutputRows  # noqa: E402
from multimodal_cat.predictions import CategoryScore, Prediction  # noqa: E402
from multimodal_cat.review import labeling_config, read_corrections  # noqa: E402
from multimodal_cat.review.labelstudio_client import LabelStudioClient  # noqa: E402
from multimodal_cat.serving.app import create_app  # noqa: E402
from multimodal_cat.serving.server import running  # noqa: E402
from multimodal_cat.serving.service import Engine, Service  # noqa: E402
from multimodal_cat.serving.settings import ServeSettings  # noqa: E402
from multimodal_cat.taxonomy import Taxonomy  # noqa: E402

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

TOKEN = "5a1e5d0c0ffee0ddba11c0de5eed5a1e5d0c0ffe"


def _program() -> str | None:
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "multimodal-cat-label-studio" / "bin" / "label-studio"
    found = os.environ.get("LABEL_STUDIO_BIN") or shutil.which("label-studio")
    return found or (str(default) if default.exists() else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    program = _program()
    if program is None:
        if os.environ.get("MULTIMODAL_CAT_REQUIRE_LABEL_STUDIO"):
            pytest.fail("Label Studio is required here but no label-studio program was found")
        pytest.skip("label-studio is not installed (pip install label-studio, in its own venv)")
    port = _free_port()
    data = tmp_path_factory.mktemp("label-studio-ml")
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "ML_BLOCK_LOCAL_IP": "false",  # the ML backend runs on 127.0.0.1 beside it
        "SSRF_PROTECTION_ENABLED": "false",  # so do its webhooks
    }
    command = [
        program, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--host", f"http://127.0.0.1:{port}", "--username", "reviewer@example.com",
        "--password", "review-pass-123", "--user-token", TOKEN,
    ]
    url = f"http://127.0.0.1:{port}"
    with open(data / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
        try:
            _wait_until_up(url, process)
            yield LabelStudioClient(url, TOKEN)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 240) -> None:
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"Label Studio did not answer on {url} within {seconds} s")


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
